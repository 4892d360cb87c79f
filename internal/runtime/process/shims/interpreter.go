package shims

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// spec is what Lookup looks for, per runtime.
type spec struct {
	file  string         // the shim, in Files
	names []string       // file names to look for in each directory, best first
	real  *regexp.Regexp // the name the interpreter's real file must have
}

var specs = map[string]spec{
	NodeJS: {
		file:  "node/bootstrap.cjs",
		names: []string{"node", "nodejs"},
		real:  regexp.MustCompile(`^nodejs$|^node(\d+)?$`),
	},
	Python: {
		file:  "python/bootstrap.py",
		names: []string{"python3", "python3.13", "python3.12", "python3.11", "python3.10", "python3.9"},
		real:  regexp.MustCompile(`^python3(\.\d+)?$`),
	},
}

// systemDirs are searched after PATH: the platform's own PATH may hold
// nothing but a version manager's shims.
var systemDirs = []string{"/usr/local/bin", "/usr/bin", "/bin"}

// Lookup finds the real interpreter of a runtime (NodeJS or Python) on PATH,
// then in /usr/local/bin, /usr/bin and /bin, skipping anything an
// unprivileged sandbox user could not run (see the package doc). Its error
// wraps ErrUnknownRuntime or ErrNoInterpreter, and says why each candidate
// it found was refused.
func Lookup(runtime string) (Shim, error) {
	return lookup(runtime, os.Getenv("PATH"), systemDirs)
}

// New returns the shim of a runtime run by the given interpreter, an
// absolute path, checked as Lookup checks what it finds.
func New(runtime, interpreter string) (Shim, error) {
	sp, ok := specs[runtime]
	if !ok {
		return Shim{}, unknownRuntime(runtime)
	}
	if !filepath.IsAbs(interpreter) {
		return Shim{}, fmt.Errorf("shims: %s: interpreter %q is not an absolute path", runtime, interpreter)
	}
	real, err := usable(sp, interpreter)
	if err != nil {
		return Shim{}, fmt.Errorf("shims: %s: %w: %w", runtime, ErrNoInterpreter, err)
	}
	return Shim{Runtime: runtime, Interpreter: real, File: sp.file}, nil
}

func unknownRuntime(runtime string) error {
	return fmt.Errorf("shims: %w %q (accepted: %q, %q)", ErrUnknownRuntime, runtime, NodeJS, Python)
}

func lookup(runtime, pathEnv string, extraDirs []string) (Shim, error) {
	sp, ok := specs[runtime]
	if !ok {
		return Shim{}, unknownRuntime(runtime)
	}
	var refused []string
	seen := map[string]bool{}
	for _, dir := range append(filepath.SplitList(pathEnv), extraDirs...) {
		// A relative PATH entry means the platform's working directory:
		// never an interpreter for every function.
		if !filepath.IsAbs(dir) {
			continue
		}
		for _, name := range sp.names {
			p := filepath.Join(dir, name)
			if seen[p] {
				continue
			}
			seen[p] = true
			real, err := usable(sp, p)
			if err == nil {
				return Shim{Runtime: runtime, Interpreter: real, File: sp.file}, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				refused = append(refused, err.Error())
			}
		}
	}
	where := "on PATH"
	if len(extraDirs) > 0 {
		where += " or in " + strings.Join(extraDirs, ", ")
	}
	msg := fmt.Sprintf("shims: %s: %v (none of %s %s)", runtime, ErrNoInterpreter, strings.Join(sp.names, ", "), where)
	if len(refused) > 0 {
		msg += "; refused: " + strings.Join(refused, "; ")
	}
	return Shim{}, &lookupError{msg: msg}
}

type lookupError struct{ msg string }

func (e *lookupError) Error() string        { return e.msg }
func (e *lookupError) Is(target error) bool { return target == ErrNoInterpreter }

// usable returns the real file behind p if an unprivileged user can run it
// as the interpreter, or an error that says why not (wrapping
// fs.ErrNotExist when there is nothing at p).
func usable(sp spec, p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if real, err = filepath.Abs(real); err != nil {
		return "", err
	}
	shown := p
	if real != p {
		shown = p + " -> " + real
	}
	for _, part := range strings.Split(real, string(filepath.Separator)) {
		if part == "shims" {
			return "", fmt.Errorf("%s: a version manager's shim", shown)
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", shown)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		return "", fmt.Errorf("%s: not executable by other users (mode %04o)", shown, fi.Mode().Perm())
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return "", err
		}
		if di.Mode().Perm()&0o001 == 0 {
			return "", fmt.Errorf("%s: directory %s is not searchable by other users (mode %04o)", shown, dir, di.Mode().Perm())
		}
		if parent := filepath.Dir(dir); parent == dir {
			break
		}
	}
	if script, err := isScript(real); err == nil && script {
		return "", fmt.Errorf("%s: a script, not the interpreter itself (a version manager's shim?)", shown)
	}
	if !sp.real.MatchString(filepath.Base(real)) {
		return "", fmt.Errorf("%s: not named like the interpreter (a launcher?)", shown)
	}
	return real, nil
}

// isScript reports whether the file starts with "#!". A file the platform
// can't read (mode 0711) is taken for a binary.
func isScript(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil {
		return false, nil // shorter than two bytes: not a script
	}
	return string(head) == "#!", nil
}

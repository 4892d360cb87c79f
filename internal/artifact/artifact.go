// Package artifact packs a function's code directory into a zip the way
// Lambda takes code, and unpacks such a zip safely.
//
// Zip is deterministic: the same files make the same bytes (sorted names,
// a fixed time, modes reduced to 0644 or 0755), so the artifact's hash
// changes only when the code does, and a re-deploy with nothing changed
// makes no version.
//
// Extract treats the zip as hostile: absolute names, "..", and symlinks
// that lead out of the directory are refused, and the number of entries and
// the unpacked size are bounded, whatever the zip's headers claim.
package artifact

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Limits of code, as Lambda sets them for unzipped code.
const (
	MaxUnzippedBytes = 250 << 20
	MaxEntries       = 20000
	MaxNameLen       = 1024
)

// ErrInvalid marks a zip or directory that can't be function code.
var ErrInvalid = errors.New("invalid code")

var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip writes dir's regular files, directories and symlinks to w.
func Zip(dir string, w io.Writer) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		if len(names) > MaxEntries {
			return fmt.Errorf("%w: %s has more than %d files", ErrInvalid, dir, MaxEntries)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	zw := zip.NewWriter(w)
	var total int64
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: zipTime}
		switch {
		case st.IsDir():
			h.Name += "/"
			h.Method = zip.Store
			h.SetMode(fs.ModeDir | 0o755)
			if _, err := zw.CreateHeader(h); err != nil {
				return err
			}
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Method = zip.Store
			h.SetMode(fs.ModeSymlink | 0o777)
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(fw, target); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			total += st.Size()
			if total > MaxUnzippedBytes {
				return fmt.Errorf("%w: %s holds more than %d MB", ErrInvalid, dir, MaxUnzippedBytes>>20)
			}
			mode := fs.FileMode(0o644)
			if st.Mode()&0o111 != 0 {
				mode = 0o755
			}
			h.SetMode(mode)
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(fw, f)
			f.Close()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s is neither a file, a directory nor a symlink", ErrInvalid, p)
		}
	}
	return zw.Close()
}

// Extract unpacks the zip in r (of size n) into dir, which must not exist;
// on error, nothing is left at dir.
func Extract(r io.ReaderAt, n int64, dir string) (err error) {
	zr, err := zip.NewReader(r, n)
	if err != nil {
		return fmt.Errorf("%w: not a zip file: %v", ErrInvalid, err)
	}
	if len(zr.File) > MaxEntries {
		return fmt.Errorf("%w: the zip has %d entries (at most %d)", ErrInvalid, len(zr.File), MaxEntries)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	budget := int64(MaxUnzippedBytes)
	links := map[string]bool{} // symlinks made so far: nothing may be written through one
	for _, f := range zr.File {
		name, err := cleanName(f.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if links[d] {
				return fmt.Errorf("%w: %s lies under the symlink %s", ErrInvalid, name, d)
			}
		}
		dst := filepath.Join(tmp, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			target, err := readSmall(f, MaxNameLen)
			if err != nil {
				return err
			}
			if err := checkLink(name, target); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
			}
			links[name] = true
		case mode.IsRegular():
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			perm := fs.FileMode(0o644)
			if mode&0o111 != 0 {
				perm = 0o755
			}
			if budget, err = writeFile(f, dst, perm, budget); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s is not a file, a directory or a symlink", ErrInvalid, name)
		}
	}
	// Each link alone stays inside, by its text; a chain of them may not
	// (a -> b/../.. through b -> x/y): resolve every link within the
	// directory, which os.Root refuses to leave.
	if len(links) > 0 {
		root, err := os.OpenRoot(tmp)
		if err != nil {
			return err
		}
		defer root.Close()
		for name := range links {
			if _, err := root.Stat(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: symlink %s leads out of the code directory", ErrInvalid, name)
			}
		}
	}
	// Directories written above may carry the zip's modes: make them all traversable.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// cleanName returns a zip entry's name as a clean relative path, or an
// error if it would land outside the directory.
func cleanName(name string) (string, error) {
	if len(name) > MaxNameLen {
		return "", fmt.Errorf("%w: a name in the zip is longer than %d bytes", ErrInvalid, MaxNameLen)
	}
	if strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return "", fmt.Errorf("%w: name %q in the zip contains a NUL or a backslash", ErrInvalid, name)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("%w: name %q in the zip is absolute", ErrInvalid, name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: name %q in the zip leads out of the code directory", ErrInvalid, name)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// checkLink refuses a symlink at name whose target leaves the directory.
func checkLink(name, target string) error {
	if target == "" || path.IsAbs(target) {
		return fmt.Errorf("%w: symlink %s -> %q must be relative", ErrInvalid, name, target)
	}
	c := path.Clean(path.Join(path.Dir(name), target))
	if c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%w: symlink %s -> %q leads out of the code directory", ErrInvalid, name, target)
	}
	return nil
}

func readSmall(f *zip.File, max int64) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	if int64(len(b)) > max {
		return "", fmt.Errorf("%w: symlink %s is too long", ErrInvalid, f.Name)
	}
	return string(b), nil
}

// writeFile writes one entry, counting its real (not claimed) size against budget.
func writeFile(f *zip.File, dst string, perm fs.FileMode, budget int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	n, err := io.Copy(out, io.LimitReader(rc, budget+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	if n > budget {
		return 0, fmt.Errorf("%w: the code unzips to more than %d MB", ErrInvalid, MaxUnzippedBytes>>20)
	}
	return budget - n, os.Chmod(dst, perm)
}

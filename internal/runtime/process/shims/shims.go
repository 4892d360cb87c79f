// Package shims holds the runtime shims that let Node.js and Python handlers
// written for AWS Lambda run unchanged as process functions, on the host's
// own node and python3, and finds those interpreters.
//
// A shim is one file of plain JavaScript or Python, embedded in the binary,
// that a process instance runs as its main program: it loads the handler
// named by _HANDLER from LAMBDA_TASK_ROOT and speaks the Lambda Runtime API
// (2018-06-01) at AWS_LAMBDA_RUNTIME_API, as Lambda's own runtime interface
// clients do, with nothing but the interpreter's standard library.
//
//   - node/bootstrap.cjs follows Lambda's nodejs20.x runtime: CommonJS and ES
//     modules (.js, .mjs, .cjs, "type": "module"), callback, context.done,
//     succeed and fail, callbackWaitsForEmptyEventLoop, async handlers, and
//     errors as {errorType, errorMessage, trace}. It is CommonJS itself, so
//     that Node starts its ES module loader only for an ES module handler.
//   - python/bootstrap.py follows Lambda's python3.11 runtime: handler(event,
//     context), JSON results (Runtime.MarshalError when a result is not
//     JSON), errors as {errorType, errorMessage, requestId, stackTrace}.
//
// Both report init failures to /runtime/init/error with Lambda's error types
// (Runtime.ImportModuleError, Runtime.HandlerNotFound,
// Runtime.UserCodeSyntaxError, Runtime.MalformedHandlerName) and exit with
// status 1. Every error they post carries its errorType in the
// Lambda-Runtime-Function-Error-Type header too. Their deviations from
// Lambda, each on purpose, are listed at the top of each file; the main ones:
// a Node handler without a callback parameter that returns a plain value
// answers with it (as nodejs24.x, where nodejs20.x answers null); output a
// handler writes itself passes through as plain lines (the platform stamps
// time and invocation), while lines the shims write themselves, and
// Python's root logger, use Lambda's text format; no response streaming.
//
// Interpreters. An instance runs in a sandbox as an unprivileged user, so
// the interpreter must be a real binary that user can reach: not a version
// manager's shim (pyenv's python3 on PATH is a bash script under /root,
// which is mode 0700) and not behind a directory others can't search.
// Lookup walks PATH, then /usr/local/bin, /usr/bin and /bin, follows
// symlinks and takes the first candidate that passes: a regular file,
// executable by others, every directory above it searchable by others, not
// a "#!" script, not under a "shims" directory, and named like the
// interpreter (node, nodejs, python3, python3.N), which rules out launchers
// such as volta-shim. On a Debian host that is /usr/bin/node and
// /usr/bin/python3.11. The sandbox must also show the interpreter's own
// files: the shared libraries, and for Python its standard library
// (/usr/lib/python3.N); a virtualenv's python is resolved to its base
// interpreter, so a venv's site-packages is not used (Lambda code carries
// its dependencies in its own directory).
//
// Placing the files. WriteTo writes the shims under a directory (atomically,
// world-readable) that the process runtime shows to instances, read-only
// (bind-mounted, or on a path whose every directory others can search);
// Shim.Argv gives the command line that runs one from there. The process
// runtime sets the environment (AWS_LAMBDA_RUNTIME_API, _HANDLER,
// LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_*, ...) and the working directory
// (the shims chdir to LAMBDA_TASK_ROOT anyway, as Lambda runs there). It
// must not pass the platform's own environment on: besides leaking it,
// NODE_EXTRA_CA_CERTS alone (set on our development machines) costs Node
// about 80 ms of CPU at every start.
//
// Cold starts, measured by BenchmarkColdStart on a shared 2-core VM (process
// start to the first GET /next; the first response comes 0.5-6 ms later):
// Node with a CommonJS handler about 66-80 ms and 75 ms of CPU, of which
// Node itself takes 41; with an ES module handler about 10 ms more; Python
// about 50 ms and 50 ms of CPU, of which Python itself takes 19.
//
// This package knows nothing of sandboxes, HTTP servers or the scheduler;
// it must not import other Hostless packages.
package shims

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Runtime names Lookup and New accept.
const (
	NodeJS = "nodejs"
	Python = "python"
)

//go:embed node/bootstrap.cjs python/bootstrap.py
var files embed.FS

// Errors of Lookup and New.
var (
	ErrUnknownRuntime = errors.New("unknown runtime")
	ErrNoInterpreter  = errors.New("no usable interpreter")
)

// nodeHeapShare is the share of a function's memory that Node's old space
// may use (--max-old-space-size): without it V8 sizes its heap from the
// host's memory, and an instance is killed by its memory limit where it
// should have collected garbage.
const nodeHeapShare = 0.9

// Shim is a runtime's shim with the interpreter that runs it.
type Shim struct {
	// Runtime is NodeJS or Python.
	Runtime string
	// Interpreter is the absolute path of the real interpreter binary, with
	// every symlink resolved.
	Interpreter string
	// File is the shim's path in Files and under WriteTo's directory, with
	// slashes: "node/bootstrap.cjs" or "python/bootstrap.py".
	File string
}

// Argv returns the command line that runs the shim written by WriteTo under
// dir, as an instance sees dir. argv[0] is the interpreter. memoryMB, when
// positive, is the function's memory limit, which sizes Node's heap.
//
// Python runs unbuffered (-u), so each line reaches the platform as it is
// written, and writes no bytecode (-B) into the read-only code directory.
func (s Shim) Argv(dir string, memoryMB int) []string {
	file := filepath.Join(dir, filepath.FromSlash(s.File))
	switch s.Runtime {
	case NodeJS:
		argv := []string{s.Interpreter}
		if heap := int(float64(memoryMB) * nodeHeapShare); heap > 0 {
			argv = append(argv, "--max-old-space-size="+strconv.Itoa(heap))
		}
		return append(argv, file)
	default:
		return []string{s.Interpreter, "-u", "-B", file}
	}
}

// Files returns the shims: node/bootstrap.cjs and python/bootstrap.py.
func Files() fs.FS { return files }

// WriteTo writes every shim under dir, which it creates if need be: files
// of mode 0644 in directories of mode 0755, so that an instance's
// unprivileged user can read them. Each file is written to a temporary name
// and renamed, so an instance starting meanwhile reads the old file or the
// new one, never half of one. It can be called again to refresh them.
func WriteTo(dir string) error {
	return fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("write shims: %w", err)
			}
			// MkdirAll leaves an existing directory's mode, and the
			// umask narrows a new one's.
			if err := os.Chmod(target, 0o755); err != nil {
				return fmt.Errorf("write shims: %w", err)
			}
			return nil
		}
		data, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		if err := writeFile(target, data); err != nil {
			return fmt.Errorf("write shims: %w", err)
		}
		return nil
	})
}

func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a failure; gone after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

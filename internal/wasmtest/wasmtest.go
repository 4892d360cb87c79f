// Package wasmtest builds WebAssembly guests for tests and benchmarks: Go
// sources compiled for wasip1 (cached by the hash of their sources, so every
// test package shares one build and one wazero compilation cache), and a
// tiny hand-assembled WASI module; and the Lambda function the process
// runtime's tests deploy, built for linux.
//
// It is imported only by tests and benchmarks.
package wasmtest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// Root returns the repository root (the directory of the main go.mod).
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("wasmtest: no caller")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// cacheRoot is where builds and the compilation cache live across runs.
func cacheRoot(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("HOSTLESS_TEST_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "hostless-test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// CompilationCacheDir is the wazero compilation cache shared by tests.
func CompilationCacheDir(t testing.TB) string {
	d := filepath.Join(cacheRoot(t), "wazero")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// Build compiles the Go package pkg (a path relative to moduleDir, e.g.
// "./hello") of the Go module in moduleDir (relative to the repository
// root) for GOOS=wasip1, as a reactor (-buildmode=c-shared) when reactor is
// set. It returns the path of the .wasm, reusing an earlier build of the
// same sources.
func Build(t testing.TB, moduleDir, pkg string, reactor bool) string {
	t.Helper()
	root := Root(t)
	mod := filepath.Join(root, moduleDir)
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %s %v\n", runtime.Version(), moduleDir, pkg, reactor)
	// Hash every Go source and go.mod the build can see: the module and the SDK.
	for _, dir := range []string{mod, filepath.Join(root, "sdk", "go")} {
		hashTree(t, h, dir)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:24]
	out := filepath.Join(cacheRoot(t), "wasm", sum+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	// A unique temporary name: parallel tests in one process, and test
	// binaries of other packages, may build the same sources at once; each
	// renames its own finished file into place.
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), sum+".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "out.wasm")
	args := []string{"build", "-o", tmp}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wasmtest: go build %s in %s: %v\n%s", pkg, moduleDir, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func hashTree(t testing.TB, h interface{ Write([]byte) (int, error) }, dir string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(p); ext == ".go" || filepath.Base(p) == "go.mod" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		_, _ = h.Write(b)
	}
}

// ReadFile reads a file or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tiny returns a hand-assembled WASI command module of a few hundred bytes
// that writes out to stdout with one fd_write call and returns: the cheapest
// possible guest, for comparing cold starts with a Go guest's.
func Tiny(out string) []byte {
	uleb := func(b []byte, v uint32) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	name := func(b []byte, s string) []byte { return append(uleb(b, uint32(len(s))), s...) }
	section := func(b []byte, id byte, content []byte) []byte {
		return append(uleb(append(b, id), uint32(len(content))), content...)
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	// Types: 0 = (i32 i32 i32 i32) -> i32 (fd_write), 1 = () -> ().
	m = section(m, 1, []byte{2, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f, 0x60, 0, 0})
	imp := name(name([]byte{1}, "wasi_snapshot_preview1"), "fd_write")
	m = section(m, 2, append(imp, 0, 0))
	m = section(m, 3, []byte{1, 1})    // one function of type 1
	m = section(m, 5, []byte{1, 0, 1}) // one memory, min 1 page
	exp := name([]byte{2}, "memory")
	exp = append(exp, 2, 0)
	exp = name(exp, "_start")
	exp = append(exp, 0, 1)
	m = section(m, 7, exp)
	// _start: fd_write(1, iovs=0, iovs_len=1, nwritten=8); drop.
	body := []byte{0, 0x41, 1, 0x41, 0, 0x41, 1, 0x41, 8, 0x10, 0, 0x1a, 0x0b}
	m = section(m, 10, append(uleb([]byte{1}, uint32(len(body))), body...))
	// Data at 0: iovec {ptr 16, len}, nwritten, padding, then the bytes.
	data := make([]byte, 16, 16+len(out))
	binary.LittleEndian.PutUint32(data[0:], 16)
	binary.LittleEndian.PutUint32(data[4:], uint32(len(out)))
	data = append(data, out...)
	seg := append([]byte{1, 0, 0x41, 0, 0x0b}, uleb(nil, uint32(len(data)))...)
	m = section(m, 11, append(seg, data...))
	return m
}

// LambdaFn builds internal/runtime/process/testdata/lambdafn, a Lambda
// function on aws-lambda-go, for linux as a custom runtime's bootstrap,
// and returns a code directory holding only that bootstrap. It reuses an
// earlier build of the same sources.
func LambdaFn(t testing.TB) string {
	t.Helper()
	root := Root(t)
	return buildLinux(t, filepath.Join(root, "internal", "runtime", "process", "testdata", "lambdafn"), filepath.Join(root, "go.sum"))
}

// LambdaExample builds examples/lambda's Go function (its own module) for
// linux and returns a code directory holding only its bootstrap.
func LambdaExample(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(t), "examples", "lambda")
	return buildLinux(t, dir, filepath.Join(dir, "go.sum"))
}

// buildLinux builds the Go package in pkg as a static linux bootstrap,
// cached by the hash of its sources and of gosum.
func buildLinux(t testing.TB, pkg, gosumPath string) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", runtime.Version(), filepath.Base(pkg))
	hashTree(t, h, pkg)
	gosum, err := os.ReadFile(gosumPath)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = h.Write(gosum)
	sum := hex.EncodeToString(h.Sum(nil))[:24]
	dir := filepath.Join(cacheRoot(t), "lambda", sum)
	if _, err := os.Stat(filepath.Join(dir, "bootstrap")); err == nil {
		return dir
	}
	tmpDir, err := os.MkdirTemp(filepath.Join(cacheRoot(t)), "lambda-"+sum+".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmpDir)
	code := filepath.Join(tmpDir, "code")
	cmd := exec.Command("go", "build", "-o", filepath.Join(code, "bootstrap"), ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wasmtest: go build %s: %v\n%s", pkg, err, b)
	}
	if err := os.Chmod(code, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(code, dir); err != nil && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		t.Fatal(err)
	}
	return dir
}

// isNotEmpty: another process renamed its build into place first.
func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && strings.Contains(le.Err.Error(), "not empty")
}

package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/deploy"
	"github.com/hostless/hostless/internal/manifest"
)

const wasmMagic = "\x00asm\x01\x00\x00\x00"

// project is a function's directory: a manifest, sources and maybe its
// built code, with a build command that writes a wasm header to out.wasm
// and counts its runs in a log outside the directory.
type project struct {
	dir, builds string
}

func newProject(t *testing.T, build string) *project {
	t.Helper()
	p := &project{dir: t.TempDir(), builds: filepath.Join(t.TempDir(), "builds.log")}
	if build == "" {
		build = fmt.Sprintf(`printf '\0asm\1\0\0\0' > out.wasm && echo built >> %q`, p.builds)
	}
	p.write(t, "hostless.yaml", fmt.Sprintf("functions:\n  fn:\n    runtime: wasm\n    code: out.wasm\n    build: %q\n", build))
	p.write(t, "main.go", "package main\n")
	p.write(t, "lib/util.go", "package lib\n")
	return p
}

func (p *project) path(name string) string { return filepath.Join(p.dir, filepath.FromSlash(name)) }

func (p *project) write(t *testing.T, name, content string) {
	t.Helper()
	path := p.path(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// age sets every file's modification time to at.
func (p *project) age(t *testing.T, at time.Time) {
	t.Helper()
	err := filepath.WalkDir(p.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(path, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (p *project) touch(t *testing.T, name string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(p.path(name), at, at); err != nil {
		t.Fatal(err)
	}
}

func (p *project) manifest(t *testing.T) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Load(p.path("hostless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (p *project) buildCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(p.builds)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "built\n")
}

func TestBuild(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old, older := now.Add(-2*time.Hour), now.Add(-3*time.Hour)
	tests := []struct {
		name      string
		mode      deploy.BuildMode
		setup     func(t *testing.T, p *project)
		wantBuild bool
	}{
		{
			name: "if stale: code missing", mode: deploy.BuildIfStale,
			setup:     func(t *testing.T, p *project) { p.age(t, old) },
			wantBuild: true,
		},
		{
			name: "if stale: code newer than every source", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.age(t, older)
				p.touch(t, "out.wasm", old)
			},
		},
		{
			name: "if stale: code as old as the sources", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.age(t, old)
			},
		},
		{
			name: "if stale: a source newer than the code", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.age(t, older)
				p.touch(t, "out.wasm", old)
				p.touch(t, "main.go", now)
			},
			wantBuild: true,
		},
		{
			name: "if stale: a source in a subdirectory newer than the code", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.age(t, older)
				p.touch(t, "out.wasm", old)
				p.touch(t, "lib/util.go", now)
			},
			wantBuild: true,
		},
		{
			// Editing the manifest (an env value, a timeout) is no reason to
			// rebuild code: it is not a source.
			name: "if stale: only the manifest newer than the code", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.age(t, older)
				p.touch(t, "out.wasm", old)
				p.touch(t, "hostless.yaml", now)
			},
			wantBuild: false,
		},
		{
			name: "if stale: a newer file in a hidden directory is ignored", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.write(t, ".git/index", "x")
				p.age(t, older)
				p.touch(t, "out.wasm", old)
				p.touch(t, ".git/index", now)
			},
		},
		{
			name: "if stale: a newer .wasm file is ignored", mode: deploy.BuildIfStale,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.write(t, "other.wasm", wasmMagic)
				p.age(t, older)
				p.touch(t, "out.wasm", old)
				p.touch(t, "other.wasm", now)
			},
		},
		{
			name: "always: code fresh", mode: deploy.BuildAlways,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", wasmMagic)
				p.age(t, older)
				p.touch(t, "out.wasm", now)
			},
			wantBuild: true,
		},
		{
			name: "never: code missing", mode: deploy.BuildNever,
			setup: func(t *testing.T, p *project) { p.age(t, old) },
		},
		{
			name: "never: source newer", mode: deploy.BuildNever,
			setup: func(t *testing.T, p *project) {
				p.write(t, "out.wasm", "stale")
				p.age(t, older)
				p.touch(t, "main.go", now)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProject(t, "")
			tt.setup(t, p)
			var out bytes.Buffer
			if err := deploy.Build(context.Background(), p.manifest(t), tt.mode, &out); err != nil {
				t.Fatalf("Build: %v\n%s", err, out.String())
			}
			want := 0
			if tt.wantBuild {
				want = 1
			}
			if got := p.buildCount(t); got != want {
				t.Fatalf("build ran %d times, want %d; output %q", got, want, out.String())
			}
			if said := strings.Contains(out.String(), "building fn: printf"); said != tt.wantBuild {
				t.Errorf("output %q: announced a build = %v, want %v", out.String(), said, tt.wantBuild)
			}
			if !tt.wantBuild {
				return
			}
			if b, err := os.ReadFile(p.path("out.wasm")); err != nil || string(b) != wasmMagic {
				t.Errorf("out.wasm = %q, %v; want the wasm header the build wrote", b, err)
			}
			// The code is fresh now: building again if stale does nothing.
			if err := deploy.Build(context.Background(), p.manifest(t), deploy.BuildIfStale, &out); err != nil {
				t.Fatal(err)
			}
			if got := p.buildCount(t); got != 1 {
				t.Errorf("a second build if stale ran the command again (%d runs)", got)
			}
		})
	}
}

func TestBuildFailure(t *testing.T) {
	t.Parallel()
	p := newProject(t, "echo compiling; echo 'syntax error' >&2; exit 3")
	var out bytes.Buffer
	err := deploy.Build(context.Background(), p.manifest(t), deploy.BuildAlways, &out)
	if err == nil {
		t.Fatal("Build of a failing command returned nil")
	}
	for _, frag := range []string{`function "fn"`, "exit 3", "exit status 3"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error %q lacks %q", err, frag)
		}
	}
	if !strings.Contains(out.String(), "compiling") || !strings.Contains(out.String(), "syntax error") {
		t.Errorf("output %q lacks the command's stdout and stderr", out.String())
	}
}

func TestBuildRunsInTheFunctionDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yaml := "functions:\n" +
		"  a:\n    runtime: wasm\n    code: build/a.wasm\n    dir: src/a\n    build: \"pwd > ../../build/a.dir && printf '\\\\0asm\\\\1\\\\0\\\\0\\\\0' > ../../build/a.wasm\"\n" +
		"  b:\n    runtime: wasm\n    code: b.wasm\n"
	if err := os.MkdirAll(filepath.Join(dir, "src", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hostless.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(filepath.Join(dir, "hostless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := deploy.Build(context.Background(), m, deploy.BuildIfStale, &out); err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	got, err := os.ReadFile(filepath.Join(dir, "build", "a.dir"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(filepath.Join(dir, "src", "a"))
	if gotDir, _ := filepath.EvalSymlinks(strings.TrimSpace(string(got))); gotDir != want {
		t.Errorf("build ran in %q, want %q", got, want)
	}
	if strings.Contains(out.String(), "building b") {
		t.Errorf("a function without a build command was built: %q", out.String())
	}
	if err := m.Functions["a"].CheckCode(); err != nil {
		t.Errorf("built code: %v", err)
	}
}

// countingServer counts the requests a deploy sends.
func countingServer(t *testing.T) (*client.Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL, "test-admin-key-0123456789"), &n
}

func TestApplyRefusesBadCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string // code files to write
		want    []string          // fragments of the error
		notWant []string
	}{
		{
			name:    "one function's code missing",
			files:   map[string]string{"good.wasm": wasmMagic, "text.wasm": wasmMagic},
			want:    []string{`function "missing"`, "no such file"},
			notWant: []string{`function "good"`, `function "text"`},
		},
		{
			name:    "one function's code not wasm",
			files:   map[string]string{"good.wasm": wasmMagic, "missing.wasm": wasmMagic, "text.wasm": "#!/bin/sh\necho hi\n"},
			want:    []string{`function "text"`, "not a WebAssembly module"},
			notWant: []string{`function "good"`, `function "missing"`},
		},
		{
			name:  "several bad functions are all named",
			files: map[string]string{"good.wasm": wasmMagic, "text.wasm": "\x00as"},
			want:  []string{`function "missing"`, `function "text"`},
		},
		{
			name:  "code is a directory",
			files: map[string]string{"good.wasm/x": "", "missing.wasm": wasmMagic, "text.wasm": wasmMagic},
			want:  []string{`function "good"`, "directory"},
		},
	}
	const yaml = "functions:\n" +
		"  good:\n    runtime: wasm\n    code: good.wasm\n" +
		"  missing:\n    runtime: wasm\n    code: missing.wasm\n" +
		"  text:\n    runtime: wasm\n    code: text.wasm\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := manifest.Parse([]byte(yaml), dir)
			if err != nil {
				t.Fatal(err)
			}
			c, requests := countingServer(t)
			var out bytes.Buffer
			results, err := deploy.Apply(context.Background(), c, m, &out)
			if err == nil {
				t.Fatal("Apply with bad code returned nil")
			}
			for _, frag := range tt.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q lacks %q", err, frag)
				}
			}
			for _, frag := range tt.notWant {
				if strings.Contains(err.Error(), frag) {
					t.Errorf("error %q blames %s, whose code is fine", err, frag)
				}
			}
			if len(results) != 0 {
				t.Errorf("results = %+v, want none", results)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("Apply sent %d requests before refusing, want none", n)
			}
			if out.Len() != 0 {
				t.Errorf("Apply printed %q, want nothing", out.String())
			}
		})
	}
}

func TestApplyStopsAtServerError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.wasm"), []byte(wasmMagic), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse([]byte("functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n  b:\n    runtime: wasm\n    code: a.wasm\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	c, requests := countingServer(t)
	results, err := deploy.Apply(context.Background(), c, m, nil)
	if err == nil || !strings.Contains(err.Error(), `function "a"`) {
		t.Fatalf("err = %v, want the first function's upload error", err)
	}
	if len(results) != 0 {
		t.Errorf("results = %+v, want none", results)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1: the deploy stops at the first failure", n)
	}
}

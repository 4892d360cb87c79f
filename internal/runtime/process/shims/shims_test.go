package shims

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// fakeBinary is the start of an ELF file: what lookup checks never runs.
const fakeBinary = "\x7fELF\x02\x01\x01"

// tree makes files under a fresh directory that other users can search:
// "name": content makes a file of mode 0755, "name@": target a symlink,
// "dir/": mode a directory of that mode (octal) after the files are made.
func tree(t *testing.T, entries map[string]string) string {
	t.Helper()
	root := t.TempDir()
	openToOthers(t, root)
	modes := map[string]os.FileMode{}
	for name, content := range entries {
		switch {
		case strings.HasSuffix(name, "/"):
			var mode os.FileMode
			for _, c := range content {
				mode = mode<<3 | os.FileMode(c-'0')
			}
			modes[filepath.Join(root, name)] = mode
			if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(name, "@"):
			p := filepath.Join(root, strings.TrimSuffix(name, "@"))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(strings.ReplaceAll(content, "$ROOT", root), p); err != nil {
				t.Fatal(err)
			}
		default:
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for dir, mode := range modes {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}
	return root
}

func TestLookup(t *testing.T) {
	t.Parallel()
	pyenvShim := "#!/usr/bin/env bash\nexec \"/root/.pyenv/libexec/pyenv\" exec \"${0##*/}\" \"$@\"\n"
	tests := []struct {
		name    string
		runtime string
		entries map[string]string
		path    []string // PATH, relative to the tree
		extra   []string // the system directories, relative to the tree
		want    string   // the interpreter, relative to the tree; "" for ErrNoInterpreter
		refused []string // what the error says
	}{
		{
			name:    "pyenv shim on PATH, real python in a system directory",
			runtime: Python,
			entries: map[string]string{
				"home/.pyenv/shims/python3":    pyenvShim,
				"home/.pyenv/shims/python3.11": pyenvShim,
				"usr/bin/python3@":             "python3.11",
				"usr/bin/python3.11":           fakeBinary,
			},
			path:  []string{"home/.pyenv/shims"},
			extra: []string{"usr/bin"},
			want:  "usr/bin/python3.11",
		},
		{
			name:    "a real python under a home others can't enter",
			runtime: Python,
			entries: map[string]string{
				"root/.pyenv/versions/3.11.7/bin/python3.11": fakeBinary,
				"root/.pyenv/versions/3.11.7/bin/python3@":   "python3.11",
				"root/":              "700",
				"usr/bin/python3.11": fakeBinary,
			},
			path:    []string{"root/.pyenv/versions/3.11.7/bin", "usr/bin"},
			want:    "usr/bin/python3.11",
			refused: []string{"is not searchable by other users (mode 0700)"},
		},
		{
			name:    "symlinks followed to the real binary",
			runtime: NodeJS,
			entries: map[string]string{
				"usr/local/bin/node@":       "$ROOT/opt/node-v20/bin/node",
				"opt/node-v20/bin/node":     fakeBinary,
				"usr/bin/node":              fakeBinary,
				"opt/node-v20/bin/README":   "",
				"usr/local/bin/unrelated@":  "/nonexistent",
				"usr/local/bin/python3.11@": "/nonexistent",
			},
			path: []string{"usr/local/bin", "usr/bin"},
			want: "opt/node-v20/bin/node",
		},
		{
			name:    "a launcher binary named otherwise",
			runtime: NodeJS,
			entries: map[string]string{
				"home/.volta/bin/node@":      "volta-shim",
				"home/.volta/bin/volta-shim": fakeBinary,
				"usr/bin/nodejs":             fakeBinary,
			},
			path:    []string{"home/.volta/bin", "usr/bin"},
			want:    "usr/bin/nodejs",
			refused: []string{"not named like the interpreter"},
		},
		{
			name:    "a binary in a shims directory",
			runtime: NodeJS,
			entries: map[string]string{
				"home/.asdf/shims/node": fakeBinary,
			},
			path:    []string{"home/.asdf/shims"},
			refused: []string{"a version manager's shim"},
		},
		{
			name:    "not executable by others",
			runtime: Python,
			entries: map[string]string{
				"opt/py/python3": fakeBinary, // made 0750 below
			},
			path:    []string{"opt/py"},
			refused: []string{"not executable by other users"},
		},
		{
			name:    "relative PATH entries are skipped",
			runtime: Python,
			entries: map[string]string{"bin/python3": fakeBinary},
			path:    []string{"RELATIVE"},
		},
		{
			name:    "nothing at all",
			runtime: NodeJS,
			path:    []string{"bin"},
			extra:   []string{"usr/bin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.entries)
			if tt.name == "not executable by others" {
				if err := os.Chmod(filepath.Join(root, "opt/py/python3"), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			abs := func(rel []string) []string {
				var out []string
				for _, r := range rel {
					if r == "RELATIVE" {
						out = append(out, "bin")
						continue
					}
					out = append(out, filepath.Join(root, r))
				}
				return out
			}
			s, err := lookup(tt.runtime, strings.Join(abs(tt.path), string(filepath.ListSeparator)), abs(tt.extra))
			if tt.want == "" {
				if !errors.Is(err, ErrNoInterpreter) {
					t.Fatalf("lookup = %+v, %v; want ErrNoInterpreter", s, err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if want := filepath.Join(root, tt.want); s.Interpreter != want {
					t.Errorf("interpreter %s, want %s", s.Interpreter, want)
				}
				if s.Runtime != tt.runtime || s.File != specs[tt.runtime].file {
					t.Errorf("shim %+v", s)
				}
				if len(tt.refused) > 0 {
					// What a successful lookup skipped is said by a
					// lookup that can't succeed: without the winner.
					_, err = lookup(tt.runtime, strings.Join(abs(tt.path[:1]), ":"), nil)
				}
			}
			for _, r := range tt.refused {
				if err == nil || !strings.Contains(err.Error(), r) {
					t.Errorf("error %v, want it to say %q", err, r)
				}
			}
		})
	}
}

func TestLookupUnknownRuntime(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ruby", "python3.11", "nodejs20.x", ""} {
		if _, err := Lookup(name); !errors.Is(err, ErrUnknownRuntime) {
			t.Errorf("Lookup(%q): %v, want ErrUnknownRuntime", name, err)
		}
		if _, err := New(name, "/usr/bin/true"); !errors.Is(err, ErrUnknownRuntime) {
			t.Errorf("New(%q): %v, want ErrUnknownRuntime", name, err)
		}
	}
}

// TestLookupHost checks what Lookup finds on this host: a real interpreter
// an unprivileged user can run, never a version manager's shim.
func TestLookupHost(t *testing.T) {
	t.Parallel()
	for _, runtime := range []string{NodeJS, Python} {
		s, err := Lookup(runtime)
		if errors.Is(err, ErrNoInterpreter) {
			t.Logf("%s: %v", runtime, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", runtime, s.Interpreter)
		if strings.Contains(s.Interpreter, "/shims/") || strings.HasPrefix(s.Interpreter, "/root/") {
			t.Errorf("%s: %s is a shim or under /root", runtime, s.Interpreter)
		}
		if real, err := filepath.EvalSymlinks(s.Interpreter); err != nil || real != s.Interpreter {
			t.Errorf("%s: %s is not the real file (%s, %v)", runtime, s.Interpreter, real, err)
		}
		if again, err := New(runtime, s.Interpreter); err != nil || again != s {
			t.Errorf("New(%q, %q) = %+v, %v; want %+v", runtime, s.Interpreter, again, err, s)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	root := tree(t, map[string]string{
		"usr/bin/python3@":   "python3.11",
		"usr/bin/python3.11": fakeBinary,
		"usr/bin/wrapper":    "#!/bin/sh\nexec python3 \"$@\"\n",
	})
	s, err := New(Python, filepath.Join(root, "usr/bin/python3"))
	if err != nil || s.Interpreter != filepath.Join(root, "usr/bin/python3.11") {
		t.Errorf("New = %+v, %v", s, err)
	}
	for _, bad := range []string{"python3", filepath.Join(root, "usr/bin/wrapper"), filepath.Join(root, "usr/bin/none")} {
		if s, err := New(Python, bad); err == nil {
			t.Errorf("New(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestArgv(t *testing.T) {
	t.Parallel()
	node := Shim{Runtime: NodeJS, Interpreter: "/usr/bin/node", File: "node/bootstrap.cjs"}
	py := Shim{Runtime: Python, Interpreter: "/usr/bin/python3.11", File: "python/bootstrap.py"}
	tests := []struct {
		name   string
		shim   Shim
		memory int
		want   []string
	}{
		{"node", node, 128, []string{"/usr/bin/node", "--max-old-space-size=115", "/var/runtime/node/bootstrap.cjs"}},
		{"node without a memory limit", node, 0, []string{"/usr/bin/node", "/var/runtime/node/bootstrap.cjs"}},
		{"python", py, 128, []string{"/usr/bin/python3.11", "-u", "-B", "/var/runtime/python/bootstrap.py"}},
	}
	for _, tt := range tests {
		if got := tt.shim.Argv("/var/runtime", tt.memory); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Argv = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestWriteTo(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "shims")
	for i := 0; i < 2; i++ { // a second write refreshes the first
		if err := WriteTo(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"node/bootstrap.cjs", "python/bootstrap.py"} {
		want, err := fs.ReadFile(Files(), name)
		if err != nil || len(want) == 0 {
			t.Fatalf("embedded %s: %d bytes, %v", name, len(want), err)
		}
		p := filepath.Join(dir, name)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %d bytes, %v; want the embedded %d bytes", name, len(got), err, len(want))
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, %v; want 0644", name, fi.Mode(), err)
		}
		if fi, err := os.Stat(filepath.Dir(p)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, %v; want 0755", filepath.Dir(p), fi.Mode(), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "node"))
	if len(entries) != 1 {
		t.Errorf("node/ holds %d files, want no temporary file left", len(entries))
	}
}

// openToOthers makes dir, a t.TempDir, and the test's directory above it
// searchable by other users, as /usr is: t.TempDir makes them 0700. It
// never touches the shared temporary directory itself.
func openToOthers(t testing.TB, dir string) {
	t.Helper()
	for ; dir != os.TempDir() && dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnprivileged runs each shim as the user nobody, as a sandbox does:
// the interpreter Lookup found and the files WriteTo wrote must serve it.
func TestUnprivileged(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as nobody")
	}
	code := map[string]map[string]string{
		NodeJS: {"index.js": `exports.handler = async () => ({uid: process.getuid()});`},
		Python: {"index.py": "import os\n\ndef handler(e, c):\n    return {'uid': os.getuid()}\n"},
	}
	for _, runtime := range []string{NodeJS, Python} {
		t.Run(runtime, func(t *testing.T) {
			t.Parallel()
			s, shimDir, root := setup(t, runtime, code[runtime])
			openToOthers(t, shimDir)
			openToOthers(t, root)
			api := newFakeAPI(t)
			api.Invoke(`{}`)
			inst := start(t, s, shimDir, api, root, "index.handler", func(cmd *exec.Cmd) {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			})
			o := api.Outcome(inst)
			if o.Kind != "response" || string(o.Body) != `{"uid": 65534}` && string(o.Body) != `{"uid":65534}` {
				t.Errorf("got %s %s, want the response of a handler run as nobody", o.Kind, o.Body)
			}
		})
	}
}

package artifact

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") || filepath.Base(name) == "bootstrap" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func zipOf(t *testing.T, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Zip(dir, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestZipIsDeterministicAndRoundTrips(t *testing.T) {
	files := map[string]string{"bootstrap": "#!/bin/sh\necho hi\n", "lib/a.js": "exports.a = 1\n", "README": "x"}
	d1, d2 := writeTree(t, files), writeTree(t, files)
	if err := os.Symlink("lib/a.js", filepath.Join(d1, "link.js")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib/a.js", filepath.Join(d2, "link.js")); err != nil {
		t.Fatal(err)
	}
	z1, z2 := zipOf(t, d1), zipOf(t, d2)
	if !bytes.Equal(z1, z2) {
		t.Fatal("the same files made different zips")
	}
	out := filepath.Join(t.TempDir(), "code")
	if err := Extract(bytes.NewReader(z1), int64(len(z1)), out); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(b) != body {
			t.Fatalf("%s: %q %v", name, b, err)
		}
	}
	st, err := os.Stat(filepath.Join(out, "bootstrap"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("bootstrap lost its exec bit: %v %v", st.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "link.js")); err != nil || string(b) != files["lib/a.js"] {
		t.Fatalf("symlink: %q %v", b, err)
	}
	// Changing a file changes the zip.
	if err := os.WriteFile(filepath.Join(d2, "README"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(z1, zipOf(t, d2)) {
		t.Fatal("a changed file made the same zip")
	}
}

type entry struct {
	name, body string
	mode       fs.FileMode
}

func makeZip(t testing.TB, entries []entry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	zw.Close()
	return b.Bytes()
}

func TestExtractRefusesEscapes(t *testing.T) {
	cases := map[string][]entry{
		"dotdot":         {{name: "../evil", body: "x", mode: 0o644}},
		"absolute":       {{name: "/etc/evil", body: "x", mode: 0o644}},
		"absolute link":  {{name: "l", body: "/etc/shadow", mode: fs.ModeSymlink | 0o777}},
		"escaping link":  {{name: "a/l", body: "../../etc", mode: fs.ModeSymlink | 0o777}},
		"through a link": {{name: "d", body: ".", mode: fs.ModeSymlink | 0o777}, {name: "d/e", body: "..", mode: fs.ModeSymlink | 0o777}},
		"a chain of links": {{name: "a/b/c/d", body: "../../..", mode: fs.ModeSymlink | 0o777},
			{name: "z", body: "a/b/c/d/../../..", mode: fs.ModeSymlink | 0o777}},
		"not a zip": nil,
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			z := []byte("PK not really")
			if entries != nil {
				z = makeZip(t, entries)
			}
			base := t.TempDir()
			out := filepath.Join(base, "code")
			err := Extract(bytes.NewReader(z), int64(len(z)), out)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatal("a refused zip left files behind")
			}
			left, _ := os.ReadDir(base)
			if len(left) != 0 {
				t.Fatalf("left %v", left)
			}
		})
	}
}

func TestExtractBoundsSize(t *testing.T) {
	// A 300 MB file of zeros compresses to a few hundred KB.
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("big")
	chunk := make([]byte, 1<<20)
	for i := 0; i < 300; i++ {
		w.Write(chunk)
	}
	zw.Close()
	err := Extract(bytes.NewReader(b.Bytes()), int64(b.Len()), filepath.Join(t.TempDir(), "code"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "250 MB") {
		t.Fatalf("want a size error naming the limit, got %v", err)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(makeZip(f, []entry{{name: "a", body: "x", mode: 0o644}, {name: "d/", mode: fs.ModeDir | 0o755}}))
	f.Add(makeZip(f, []entry{{name: "l", body: "a", mode: fs.ModeSymlink | 0o777}, {name: "l/x", body: "y", mode: 0o644}}))
	f.Add(makeZip(f, []entry{{name: "../x", body: "x", mode: 0o644}}))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, z []byte) {
		base := t.TempDir()
		out := filepath.Join(base, "code")
		err := Extract(bytes.NewReader(z), int64(len(z)), out)
		// Whatever happened, nothing may exist outside base.
		if err != nil {
			if _, serr := os.Stat(out); !os.IsNotExist(serr) {
				t.Fatal("failed extract left code behind")
			}
			return
		}
		filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if d != nil && d.Type()&fs.ModeSymlink != 0 {
				target, _ := filepath.EvalSymlinks(p)
				if target != "" && !strings.HasPrefix(target, out) {
					t.Fatalf("symlink %s leads to %s", p, target)
				}
			}
			return nil
		})
	})
}

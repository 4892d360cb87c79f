// Package deploy applies a manifest to a server through the control API:
// it builds stale code, checks every function before anything is sent,
// uploads artifacts the server lacks, and puts each function, reporting
// what changed. It knows the server only through the client package.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/manifest"
)

// BuildMode says when build commands run.
type BuildMode int

const (
	// BuildIfStale builds when the code is missing or older than a file in
	// its build directory.
	BuildIfStale BuildMode = iota
	// BuildAlways runs every build command.
	BuildAlways
	// BuildNever runs none.
	BuildNever
)

// buildTimeout bounds one build command.
const buildTimeout = 10 * time.Minute

// Build runs the build commands the mode calls for, printing to out.
func Build(ctx context.Context, m *manifest.Manifest, mode BuildMode, out io.Writer) error {
	if mode == BuildNever {
		return nil
	}
	for _, name := range m.Order {
		f := m.Functions[name]
		if f.Build == "" {
			continue
		}
		if mode == BuildIfStale && !stale(f.Code, f.BuildDir, m.Path) {
			continue
		}
		fmt.Fprintf(out, "building %s: %s\n", name, f.Build)
		bctx, cancel := context.WithTimeout(ctx, buildTimeout)
		cmd := exec.CommandContext(bctx, "sh", "-c", f.Build)
		cmd.Dir = f.BuildDir
		cmd.Stdout, cmd.Stderr = out, out
		err := cmd.Run()
		cancel()
		if err != nil {
			return fmt.Errorf("function %q: build %q: %w", name, f.Build, err)
		}
	}
	return nil
}

// stale reports whether code is missing or older than any file under dir,
// other than .wasm files and the manifest that was loaded: editing a
// function's env must not rebuild every function. (A changed build command
// alone is not seen: `deploy --build` runs it.)
func stale(code, dir, manifest string) bool {
	st, err := os.Stat(code)
	if err != nil {
		return true
	}
	newer := errors.New("newer")
	seen := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if seen++; seen > 20000 || filepath.Ext(p) == ".wasm" {
			return nil
		}
		if p == manifest {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(st.ModTime()) {
			return newer
		}
		return nil
	})
	return errors.Is(err, newer)
}

// Result is what happened to one function.
type Result struct {
	Name    string
	Action  string // created, updated, unchanged
	Version int
}

// Apply deploys every function of m. It checks all of them first, so an
// invalid function stops the deploy before anything is stored.
func Apply(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]Result, error) {
	var errs []error
	for _, name := range m.Order {
		if err := m.Functions[name].CheckCode(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var results []Result
	for _, name := range m.Order {
		f := m.Functions[name]
		ref, err := c.UploadArtifact(ctx, f.Code)
		if err != nil {
			return results, fmt.Errorf("function %q: upload %s: %w", name, f.Code, err)
		}
		res, err := c.PutFunction(ctx, name, f.Spec(ref))
		if err != nil {
			return results, fmt.Errorf("function %q: %w", name, err)
		}
		r := Result{Name: name, Action: res.Action, Version: res.Version.Number}
		results = append(results, r)
		if out != nil {
			fmt.Fprintf(out, "%-24s %-9s version %d\n", name, r.Action, r.Version)
		}
	}
	return results, nil
}

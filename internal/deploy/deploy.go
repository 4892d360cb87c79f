// Package deploy applies a manifest to a server through the control API:
// it builds stale code, checks every function before anything is sent,
// puts the collections whose spec changed, uploads artifacts the server
// lacks, and puts each function, reporting what changed. It knows the server only through the client package.
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

	"github.com/hostless/hostless/internal/artifact"
	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/function"
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
	Action  string // created, updated, unchanged, deleted
	Version int    // the version with the manifest's spec
	// Live is what the live alias serves after the deploy.
	Live function.Alias
}

// Serving describes what a live alias serves, for people: "version 2", or
// "version 2 (90%) and canary version 3 (10%)".
func Serving(version, canary, weight int) string {
	if canary == 0 {
		return fmt.Sprintf("version %d", version)
	}
	return fmt.Sprintf("version %d (%d%%) and canary version %d (%d%%)", version, 100-weight, canary, weight)
}

// line is one function's line of a deploy's output.
func (r Result) line() string {
	s := fmt.Sprintf("%-24s %-9s version %d", r.Name, r.Action, r.Version)
	if r.Live.CanaryVersion == r.Version && r.Version != 0 && r.Action != "deleted" {
		s += fmt.Sprintf(" as live's canary (%d%%); version %d serves the rest", r.Live.CanaryWeight, r.Live.Version)
	}
	return s
}

// checkCode checks the code of every function, naming each bad one.
func checkCode(m *manifest.Manifest) error {
	var errs []error
	for _, name := range m.Order {
		if err := m.Functions[name].CheckCode(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Actions of a plan.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	ActionDelete    = "delete"
)

// Change is one line of a plan: what a deploy would do to one function.
type Change struct {
	Name   string
	Action string // create, update, unchanged or delete
	// Version is the live alias's version now (0 for a create), and
	// Serving what the live alias serves, described.
	Version int
	Serving string
	// To says what an update does: "a new version", "a new version as its
	// canary (10%)", "version 3 alone" (the canary's spec: a promote) or
	// "version 2 alone" (the stable spec: the canary is dropped).
	To string
}

// Plan says what Apply (canary 0) or ApplyCanary (and, with prune, Prune)
// would do, as terraform plan does, without storing or uploading anything:
// code is hashed locally and compared, with the rest of each spec, to the
// specs the live alias serves, by the rule the server applies
// (store.Deploy). It prints one line per function and a summary to out, if
// not nil.
func Plan(ctx context.Context, c *client.Client, m *manifest.Manifest, prune bool, canary int, out io.Writer) ([]Change, error) {
	if err := checkCode(m); err != nil {
		return nil, err
	}
	var changes []Change
	for _, name := range m.Order {
		f := m.Functions[name]
		path, cleanup, err := artifactFile(f)
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", name, err)
		}
		ref, err := client.FileRef(path)
		cleanup()
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", name, err)
		}
		ch := Change{Name: name, Action: ActionCreate}
		view, err := c.GetFunction(ctx, name)
		switch {
		case client.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("function %q: %w", name, err)
		default:
			ch.Version, ch.Action = view.Version, ActionUpdate
			ch.Serving = Serving(view.Version, view.CanaryVersion, view.CanaryWeight)
			ch.Action, ch.To = planUpdate(view, f.Spec(ref), canary)
		}
		changes = append(changes, ch)
	}
	if prune {
		gone, err := pruned(ctx, c, m)
		if err != nil {
			return nil, err
		}
		for _, fn := range gone {
			changes = append(changes, Change{Name: fn.Name, Action: ActionDelete, Version: fn.Version})
		}
	}
	if out != nil {
		n := map[string]int{}
		for _, ch := range changes {
			n[ch.Action]++
			switch ch.Action {
			case ActionCreate:
				fmt.Fprintf(out, "%-24s %-9s\n", ch.Name, ch.Action)
			case ActionUpdate:
				fmt.Fprintf(out, "%-24s %-9s %s -> %s\n", ch.Name, ch.Action, ch.Serving, ch.To)
			case ActionUnchanged:
				fmt.Fprintf(out, "%-24s %-9s %s\n", ch.Name, ch.Action, ch.Serving)
			default:
				fmt.Fprintf(out, "%-24s %-9s version %d\n", ch.Name, ch.Action, ch.Version)
			}
		}
		fmt.Fprintf(out, "Plan: %d to create, %d to update, %d to delete, %d unchanged.\n",
			n[ActionCreate], n[ActionUpdate], n[ActionDelete], n[ActionUnchanged])
	}
	return changes, nil
}

// planUpdate says what a deploy of spec does to a function that exists,
// by the server's rule (store.Deploy).
func planUpdate(view client.FunctionView, spec function.Spec, canary int) (action, to string) {
	if view.Spec == nil {
		return ActionUpdate, "a new version"
	}
	head := view.Spec
	if view.CanarySpec != nil {
		head = view.CanarySpec
	}
	switch {
	case spec.Equal(head) && (canary > 0 || view.CanarySpec == nil):
		return ActionUnchanged, ""
	case canary > 0:
		return ActionUpdate, fmt.Sprintf("a new version as its canary (%d%%)", canary)
	case spec.Equal(head):
		return ActionUpdate, fmt.Sprintf("version %d alone (the canary's spec: promoted)", view.CanaryVersion)
	case view.CanarySpec != nil && spec.Equal(view.Spec):
		return ActionUpdate, fmt.Sprintf("version %d alone (the canary is dropped)", view.Version)
	}
	return ActionUpdate, "a new version"
}

// pruned lists the deployed functions that m no longer has.
func pruned(ctx context.Context, c *client.Client, m *manifest.Manifest) ([]function.Function, error) {
	all, err := c.ListFunctions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var gone []function.Function
	for _, fn := range all {
		if _, ok := m.Functions[fn.Name]; !ok {
			gone = append(gone, fn)
		}
	}
	return gone, nil
}

// Prune deletes the deployed functions that m no longer has, and their
// versions. Run it after Apply succeeded, never instead of it.
func Prune(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]Result, error) {
	gone, err := pruned(ctx, c, m)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, fn := range gone {
		if err := c.DeleteFunction(ctx, fn.Name); err != nil && !client.IsNotFound(err) {
			return results, fmt.Errorf("function %q: delete: %w", fn.Name, err)
		}
		r := Result{Name: fn.Name, Action: "deleted", Version: fn.Version}
		results = append(results, r)
		if out != nil {
			fmt.Fprintln(out, r.line())
		}
	}
	return results, nil
}

// Apply deploys every function of m: the live alias of each serves its
// spec alone. It checks all of them first, so an invalid function stops
// the deploy before anything is stored. m's collections and buckets are
// applied (ApplyCollections, ApplyBuckets) before the functions, which may
// use them.
func Apply(ctx context.Context, c *client.Client, m *manifest.Manifest, out io.Writer) ([]Result, error) {
	return apply(ctx, c, m, 0, out)
}

// ApplyCanary deploys every function of m as a canary: a function whose
// spec changed gets its new version as the live alias's canary, taking
// weight percent (1-99) of its calls while live's version keeps the rest.
// Functions that didn't change are untouched; new functions are created
// serving alone. Promote (or deploy again without a canary) to finish.
func ApplyCanary(ctx context.Context, c *client.Client, m *manifest.Manifest, weight int, out io.Writer) ([]Result, error) {
	if weight < function.MinCanaryWeight || weight > function.MaxCanaryWeight {
		return nil, fmt.Errorf("canary weight %d: a canary takes %d to %d percent of the calls", weight, function.MinCanaryWeight, function.MaxCanaryWeight)
	}
	return apply(ctx, c, m, weight, out)
}

func apply(ctx context.Context, c *client.Client, m *manifest.Manifest, weight int, out io.Writer) ([]Result, error) {
	if err := checkCode(m); err != nil {
		return nil, err
	}
	// A canary deploy puts collections as they are too: a collection has
	// one spec at a time.
	if _, err := ApplyCollections(ctx, c, m, out); err != nil {
		return nil, err
	}
	if _, err := ApplyBuckets(ctx, c, m, out); err != nil {
		return nil, err
	}
	var results []Result
	for _, name := range m.Order {
		f := m.Functions[name]
		path, cleanup, err := artifactFile(f)
		if err != nil {
			return results, fmt.Errorf("function %q: %w", name, err)
		}
		ref, err := c.UploadArtifact(ctx, path)
		cleanup()
		if err != nil {
			return results, fmt.Errorf("function %q: upload %s: %w", name, f.Code, err)
		}
		var res client.PutResult
		if weight > 0 {
			res, err = c.PutCanary(ctx, name, f.Spec(ref), weight)
		} else {
			res, err = c.PutFunction(ctx, name, f.Spec(ref))
		}
		if err != nil {
			return results, fmt.Errorf("function %q: %w", name, err)
		}
		fn := res.Function
		r := Result{Name: name, Action: res.Action, Version: res.Version.Number,
			Live: function.Alias{Project: fn.Project, Function: fn.Name, Name: function.LiveAlias,
				Version: fn.Version, CanaryVersion: fn.CanaryVersion, CanaryWeight: fn.CanaryWeight}}
		results = append(results, r)
		if out != nil {
			fmt.Fprintln(out, r.line())
		}
	}
	return results, nil
}

// artifactFile returns the file to upload for f: its module or zip as it
// is, or a zip made of its code directory (deterministic, so unchanged code
// makes the same artifact), which cleanup removes.
func artifactFile(f *manifest.Function) (path string, cleanup func(), err error) {
	st, err := os.Stat(f.Code)
	if err != nil || !st.IsDir() {
		return f.Code, func() {}, err
	}
	tmp, err := os.CreateTemp("", "hostless-code-*.zip")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.Remove(tmp.Name()) }
	err = artifact.Zip(f.Code, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("zip %s: %w", f.Code, err)
	}
	return tmp.Name(), cleanup, nil
}

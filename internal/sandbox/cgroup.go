package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroups finds where this process may make groups for its sandboxes:
// the memory and pids controllers of cgroup v1 (a hybrid host such as this
// one has memory only on v1), or the unified v2 hierarchy.
type cgroups struct {
	v2     bool
	memory string // v1: dir of the memory controller for our groups; v2: our parent group
	pids   string // v1: dir of the pids controller ("" if absent)
}

// group is one sandbox's cgroup (in one or two hierarchies).
type group struct {
	cg   *cgroups
	dirs []string // memory dir first
}

const cgroupRoot = "/sys/fs/cgroup"

// findCgroups picks the hierarchy: v1's memory controller if it is mounted
// (its own dir under our own cgroup), else v2 with the memory controller
// available.
func findCgroups(name string) (*cgroups, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	if p, ok := own["memory"]; ok && isDir(filepath.Join(cgroupRoot, "memory")) {
		cg := &cgroups{memory: filepath.Join(cgroupRoot, "memory", p, name)}
		if pp, ok := own["pids"]; ok && isDir(filepath.Join(cgroupRoot, "pids")) {
			cg.pids = filepath.Join(cgroupRoot, "pids", pp, name)
		}
		for _, d := range []string{cg.memory, cg.pids} {
			if d == "" {
				continue
			}
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("sandbox: make cgroup %s: %w", d, err)
			}
		}
		return cg, nil
	}
	// v2: the unified hierarchy at /sys/fs/cgroup (or /sys/fs/cgroup/unified).
	for _, mnt := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
		ctrl, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
		if err != nil || !bytes.Contains(ctrl, []byte("memory")) {
			continue
		}
		// Groups go beside ours, under our parent, so that "no internal
		// processes" doesn't forbid enabling controllers for them.
		parent := filepath.Join(mnt, filepath.Dir(own[""]))
		dir := filepath.Join(parent, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox: make cgroup %s: %w", dir, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
			return nil, fmt.Errorf("sandbox: enable memory and pids controllers in %s: %w", dir, err)
		}
		return &cgroups{v2: true, memory: dir}, nil
	}
	return nil, errors.New("sandbox: no cgroup memory controller (neither cgroup v1 memory nor v2 with memory enabled)")
}

// ownCgroups maps controller ("" for v2) to this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// newGroup makes the cgroup of one sandbox with a pids limit.
func (cg *cgroups) newGroup(name string, pids int) (*group, error) {
	g := &group{cg: cg}
	for _, root := range []string{cg.memory, cg.pids} {
		if root == "" {
			continue
		}
		d := filepath.Join(root, name)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			g.remove()
			return nil, fmt.Errorf("sandbox: make cgroup: %w", err)
		}
		g.dirs = append(g.dirs, d)
	}
	pidsDir := g.dirs[0]
	if !cg.v2 {
		pidsDir = ""
		if len(g.dirs) > 1 {
			pidsDir = g.dirs[1]
		}
	}
	if pidsDir != "" {
		if err := write(pidsDir, "pids.max", strconv.Itoa(pids)); err != nil {
			g.remove()
			return nil, err
		}
	}
	return g, nil
}

// setMemory sets the memory limit, swap included.
func (g *group) setMemory(mb int) error {
	b := strconv.FormatInt(int64(mb)<<20, 10)
	m := g.dirs[0]
	if g.cg.v2 {
		if err := write(m, "memory.max", b); err != nil {
			return err
		}
		_ = write(m, "memory.swap.max", "0") // absent without swap accounting
		return nil
	}
	// memsw must stay >= limit: raise it first when growing, last when shrinking.
	_ = write(m, "memory.memsw.limit_in_bytes", "-1")
	if err := write(m, "memory.limit_in_bytes", b); err != nil {
		return err
	}
	_ = write(m, "memory.memsw.limit_in_bytes", b) // absent without swap accounting
	return nil
}

// add moves a process into the group.
func (g *group) add(pid int) error {
	for _, d := range g.dirs {
		if err := write(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// oomKills returns how many processes the kernel killed for memory in the group.
func (g *group) oomKills() int {
	file, key := "memory.oom_control", "oom_kill"
	if g.cg.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.dirs[0], file))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// memoryPeak returns the most memory the group used, in bytes.
func (g *group) memoryPeak() int64 {
	file := "memory.max_usage_in_bytes"
	if g.cg.v2 {
		file = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(g.dirs[0], file))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// remove deletes the group once its processes are gone (waiting briefly
// for the kernel to finish tearing them down).
func (g *group) remove() {
	for _, d := range g.dirs {
		for i := 0; i < 100; i++ {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func write(dir, file, v string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("sandbox: set %s: %w", file, err)
	}
	return nil
}

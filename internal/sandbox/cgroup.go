package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cgroups finds where this process may make groups for its sandboxes:
// the memory, pids and cpu controllers of cgroup v1 (a hybrid host such as
// this one has memory only on v1), or the unified v2 hierarchy.
type cgroups struct {
	v2     bool
	memory string // v1: dir of the memory controller for our groups; v2: our parent group
	pids   string // v1: dir of the pids controller ("" if absent)
	cpu    string // v1: dir of the cpu controller ("" if absent)
}

// group is one sandbox's cgroup, in each hierarchy (on v2, one dir).
type group struct {
	cg             *cgroups
	mem, pids, cpu string // "" where the controller is absent
}

// dirs are the group's distinct directories, memory's first.
func (g *group) dirs() []string {
	var out []string
	for _, d := range []string{g.mem, g.pids, g.cpu} {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
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
		if cp, ok := own["cpu"]; ok && isDir(filepath.Join(cgroupRoot, "cpu")) {
			cg.cpu = filepath.Join(cgroupRoot, "cpu", cp, name)
		}
		for _, d := range []string{cg.memory, cg.pids, cg.cpu} {
			if d == "" {
				continue
			}
			sweepStale(d)
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
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids +cpu"), 0); err != nil {
			return nil, fmt.Errorf("sandbox: enable memory, pids and cpu controllers in %s: %w", dir, err)
		}
		return &cgroups{v2: true, memory: dir}, nil
	}
	return nil, errors.New("sandbox: no cgroup memory controller (neither cgroup v1 memory nor v2 with memory enabled)")
}

// parent is the manager's own group, for removal at Close.
func (cg *cgroups) parent() *group { return &group{cg: cg, mem: cg.memory, pids: cg.pids, cpu: cg.cpu} }

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
	if cg.v2 {
		g.mem = filepath.Join(cg.memory, name)
		g.pids, g.cpu = g.mem, g.mem
	} else {
		g.mem = filepath.Join(cg.memory, name)
		if cg.pids != "" {
			g.pids = filepath.Join(cg.pids, name)
		}
		if cg.cpu != "" {
			g.cpu = filepath.Join(cg.cpu, name)
		}
	}
	for _, d := range g.dirs() {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			g.remove()
			return nil, fmt.Errorf("sandbox: make cgroup: %w", err)
		}
	}
	if g.pids != "" {
		if err := write(g.pids, "pids.max", strconv.Itoa(pids)); err != nil {
			g.remove()
			return nil, err
		}
	}
	return g, nil
}

// setMemory sets the memory limit, swap included, and the group's CPU
// weight in proportion to it (as Lambda gives CPU with memory). A weight,
// not a cap: under contention the platform's own threads keep their share,
// and a function can't starve the gateway or other functions.
func (g *group) setMemory(mb int) error {
	b := strconv.FormatInt(int64(mb)<<20, 10)
	m := g.mem
	if g.cg.v2 {
		if err := write(m, "memory.max", b); err != nil {
			return err
		}
		_ = write(m, "memory.swap.max", "0") // absent without swap accounting
		_ = write(m, "cpu.weight", strconv.Itoa(min(10000, max(1, mb/16))))
		return nil
	}
	// memsw must stay >= limit: raise it first when growing, last when shrinking.
	_ = write(m, "memory.memsw.limit_in_bytes", "-1")
	if err := write(m, "memory.limit_in_bytes", b); err != nil {
		return err
	}
	_ = write(m, "memory.memsw.limit_in_bytes", b) // absent without swap accounting
	if g.cpu != "" {
		_ = write(g.cpu, "cpu.shares", strconv.Itoa(max(2, mb)))
	}
	return nil
}

// add moves a process into the group.
func (g *group) add(pid int) error {
	for _, d := range g.dirs() {
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
	b, err := os.ReadFile(filepath.Join(g.mem, file))
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
	b, err := os.ReadFile(filepath.Join(g.mem, file))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// remove deletes the group once its processes are gone (waiting briefly
// for the kernel to finish tearing them down).
func (g *group) remove() {
	for _, d := range g.dirs() {
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

// sweepStale removes the groups that servers which died without closing
// (kill -9) left beside dir: "hostless-<pid>" whose process is gone. A
// group whose processes still run can't be removed and is left alone.
func sweepStale(dir string) {
	parent := filepath.Dir(dir)
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, ok := strings.CutPrefix(e.Name(), "hostless-")
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(pid)
		if err != nil || n == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // that server is alive
		}
		stale := filepath.Join(parent, e.Name())
		slots, _ := os.ReadDir(stale)
		for _, s := range slots {
			if s.IsDir() {
				_ = os.Remove(filepath.Join(stale, s.Name()))
			}
		}
		_ = os.Remove(stale)
	}
}

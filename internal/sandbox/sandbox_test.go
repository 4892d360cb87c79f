package sandbox

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	MaybeInit()
	os.Exit(m.Run())
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.Isolation != IsolationNone {
		if err := Check(); err != nil {
			t.Skip("needs a host that can sandbox (CI runs as root): ", err)
		}
	}
	cfg.Dir = t.TempDir()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// run runs a shell script in a fresh slot and returns its stdout, stderr
// and exit.
func run(t *testing.T, m *Manager, code, script string, memMB int) (string, string, Exit) {
	t.Helper()
	return runNet(t, m, NetworkNone, code, script, memMB)
}

func runNet(t *testing.T, m *Manager, network, code, script string, memMB int, allow ...string) (string, string, Exit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := m.Take(ctx, network)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(ctx, Spec{Code: code, Path: "/bin/sh", Args: []string{"sh", "-c", script},
		Env: []string{"PATH=/usr/bin:/bin", "SECRET_OF_THIS_INSTANCE=s3cr3t"}, MemoryMB: memMB, Allow: allow}); err != nil {
		t.Fatal(err)
	}
	outc := make(chan []byte)
	go func() { b, _ := io.ReadAll(s.Stderr()); outc <- b }()
	out, _ := io.ReadAll(s.Stdout())
	errOut := <-outc
	select {
	case <-s.Exited():
	case <-ctx.Done():
		t.Fatal("the process did not end")
	}
	return string(out), string(errOut), s.Exit()
}

func codeDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "handler.txt"), []byte("the code\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSandboxIsolation(t *testing.T) {
	m := newManager(t, Config{})
	code := codeDir(t)
	script := `
echo "uid=$(id -u)"
echo "host=$(hostname)"
echo "task=$(cat /var/task/handler.txt)"
set -- /proc/[0-9]*; echo "pids=$#"
echo "pid1=$(cat /proc/1/cmdline | tr '\0' ' ')"
cat /etc/shadow >/dev/null 2>&1 && echo "shadow=readable" || echo "shadow=hidden"
echo x > /var/task/new 2>/dev/null && echo "task=writable" || echo "task=readonly"
echo x > /tmp/mine && echo "tmp=$(cat /tmp/mine)"
echo x > /etc/evil 2>/dev/null && echo "etc=writable" || echo "etc=readonly"
ls ` + filepath.Dir(m.root) + ` >/dev/null 2>&1 && echo "data=visible" || echo "data=hidden"
[ -z "$(ls -A /.host 2>/dev/null)" ] && echo "host=covered" || echo "host=visible"
ls -l /proc/self/fd/ | grep -o '[0-9]* -> .*' | sed 's/^/fd /'
unshare -U true 2>/dev/null && echo "userns=allowed" || echo "userns=denied"
python3 -c 'import ctypes,sys; r=ctypes.CDLL(None,use_errno=True).syscall(248,b"user",b"k",b"v",1,-3); print("keyring=%s" % ("denied" if r<0 and ctypes.get_errno()==1 else "allowed"))'
echo "init=$(cat /proc/1/cmdline 2>/dev/null | tr '\0' ' ')"
echo "links=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "env=$(cat /proc/1/environ 2>/dev/null | tr '\0' ' ')"
`
	out, errOut, exit := run(t, m, code, script, 64)
	if exit.Code != 0 || exit.Err != nil {
		t.Fatalf("exit %v, stderr %s", exit, errOut)
	}
	want := []string{"host=sandbox", "task=the code", "pids=1", "shadow=hidden", "task=readonly",
		"tmp=x", "etc=readonly", "data=hidden", "host=covered", "links=lo ", "userns=denied", "keyring=denied", "init="}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("want %q in:\n%s", w, out)
		}
	}
	if strings.Contains(out, "uid=0\n") || !strings.Contains(out, "uid=2") {
		t.Errorf("runs as root or not as a sandbox uid:\n%s", out)
	}
	// No socket (init's control socket) in the function's descriptors.
	if strings.Contains(out, "socket:") {
		t.Errorf("a socket of init's leaked into the function:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("init's environment (pid 1) is readable to the function:\n%s", out)
	}
}

func TestSandboxNoHostNetwork(t *testing.T) {
	m := newManager(t, Config{})
	// The host's PostgreSQL and other services listen on 127.0.0.1 and all
	// interfaces; none is reachable from inside.
	script := `for p in 5432 6379 4222; do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && echo "reached $p"; done; echo done`
	out, errOut, exit := run(t, m, codeDir(t), "exec bash -c '"+script+"'", 64)
	if exit.Code != 0 {
		t.Fatalf("exit %v: %s", exit, errOut)
	}
	if strings.Contains(out, "reached") || !strings.Contains(out, "done") {
		t.Fatalf("sandbox reached the host:\n%s", out)
	}
}

func TestSandboxMemoryLimit(t *testing.T) {
	m := newManager(t, Config{})
	// Filling /tmp (tmpfs) past the limit counts as the instance's memory.
	// 64 MB, not less: init is this test binary, which under the race
	// detector alone came near 32 MB and was killed before the script ran.
	_, _, exit := run(t, m, codeDir(t), "head -c 200000000 /dev/zero > /tmp/big; echo survived", 64)
	if !exit.OOM {
		t.Fatalf("want an OOM kill at 64 MB, got %v", exit)
	}
}

func TestSandboxPidsLimit(t *testing.T) {
	m := newManager(t, Config{Pids: 32})
	out, errOut, exit := run(t, m, codeDir(t), "n=0; while [ $n -lt 100 ]; do sleep 5 & n=$((n+1)); done; set -- /proc/[0-9]*; echo procs=$#", 64)
	if exit.Err != nil {
		t.Fatal(exit)
	}
	if strings.Contains(errOut, "fork") {
		return // the shell itself could not fork past the limit
	}
	var n int
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, "procs="); ok {
			n = atoi(v)
		}
	}
	if n == 0 || n > 32 {
		t.Fatalf("want at most 32 processes under pids.max 32, saw %d (%q)", n, out)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestSandboxKillEndsEverything(t *testing.T) {
	m := newManager(t, Config{})
	ctx := context.Background()
	s, err := m.Take(ctx, NetworkNone)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, Spec{Code: codeDir(t), Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 60 & sleep 60"}, MemoryMB: 64}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the sandbox")
	}
	if e := s.Exit(); e.Code == 0 {
		t.Fatalf("killed sandbox reports a clean exit: %v", e)
	}
}

func TestPlainSlot(t *testing.T) {
	m := newManager(t, Config{Isolation: IsolationNone})
	code := codeDir(t)
	out, _, exit := run(t, m, code, "cat handler.txt; pwd", 64)
	if exit.Code != 0 || !strings.Contains(out, "the code") || !strings.Contains(out, code) {
		t.Fatalf("exit %v out %q", exit, out)
	}
}

func TestSandboxCgroupSettings(t *testing.T) {
	m := newManager(t, Config{})
	ctx := context.Background()
	s, err := m.Take(ctx, NetworkNone)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, Spec{Code: codeDir(t), Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 5"}, MemoryMB: 96}); err != nil {
		t.Fatal(err)
	}
	read := func(dir, file string) string {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	g := s.grp
	if got := read(g.mem, "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("memory limit %s", got)
	}
	if g.pids != "" && read(g.pids, "pids.max") != "256" {
		t.Errorf("pids.max %s", read(g.pids, "pids.max"))
	}
	if g.cpu != "" && read(g.cpu, "cpu.shares") != "96" {
		t.Errorf("cpu.shares %s, want the memory in MB", read(g.cpu, "cpu.shares"))
	}
	if procs := read(g.mem, "cgroup.procs"); len(strings.Fields(procs)) < 2 {
		t.Errorf("the group holds %q: want init and the function", procs)
	}
	s.Close()
	for _, d := range g.dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left after Close", d)
		}
	}
}

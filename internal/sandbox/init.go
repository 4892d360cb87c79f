package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// initCapable is set by MaybeInit: only a binary that calls it may be
// re-executed as init (any other would run its own main in the sandbox).
var initCapable atomic.Bool

// rootEnv names init's environment variable that holds the root's mountpoint.
const rootEnv = "HOSTLESS_SANDBOX_ROOT"

// initArg is argv[0] of the re-executed binary that becomes PID 1 of a
// sandbox.
const initArg = "hostless-sandbox-init"

// Messages on the control socket between the platform and a sandbox's init.
type (
	// startMsg tells init what to run.
	startMsg struct {
		Code    string   `json:"code"`              // host dir bound read-only at /var/task
		Runtime string   `json:"runtime,omitempty"` // host dir bound read-only at /var/runtime
		Path    string   `json:"path"`
		Args    []string `json:"args"`
		Env     []string `json:"env"`
		NoFile  uint64   `json:"nofile"`
		Procs   uint64   `json:"procs"` // RLIMIT_NPROC: the pids limit again, for hosts without a pids cgroup
	}
	// initMsg is what init reports: ready, started (pid), exited, or an error.
	initMsg struct {
		Ready  bool   `json:"ready,omitempty"`
		Pid    int    `json:"pid,omitempty"`
		Exited bool   `json:"exited,omitempty"`
		Code   int    `json:"code,omitempty"`
		Signal int    `json:"signal,omitempty"`
		Error  string `json:"error,omitempty"`
	}
)

// Fds of the init process (ExtraFiles start at 3).
const (
	ctlFd    = 3
	stdoutFd = 4
	stderrFd = 5
)

// MaybeInit runs the sandbox init and exits if this process was started as
// one; otherwise it returns at once. Call it first thing in main, and in
// TestMain of every test binary that starts sandboxes.
func MaybeInit() {
	if len(os.Args) == 0 || os.Args[0] != initArg {
		initCapable.Store(true)
		return
	}
	ctl := os.NewFile(ctlFd, "ctl")
	err := initMain(ctl, os.Args[1:])
	if err != nil {
		send(ctl, initMsg{Error: err.Error()})
		os.Exit(1)
	}
	os.Exit(0)
}

// initMain prepares the sandbox's root, reports ready, waits for what to
// run, runs it as the sandbox user, reaps, and reports its exit.
func initMain(ctl *os.File, args []string) error {
	// The control socket and the output pipes are init's alone: the
	// function's process gets the pipes as its stdout and stderr, and no
	// other descriptor of init's (it could forge init's reports).
	for _, fd := range []int{ctlFd, stdoutFd, stderrFd} {
		unix.CloseOnExec(fd)
	}
	if len(args) != 3 {
		return errors.New("sandbox init: want tmp MB, uid, gid")
	}
	// The root's host path comes in the environment, which the function
	// can't read (/proc/1/environ is init's, root's), not in argv.
	root := os.Getenv(rootEnv)
	tmpMB, _ := strconv.Atoi(args[0])
	uid, _ := strconv.Atoi(args[1])
	gid, _ := strconv.Atoi(args[2])
	// Init itself is never the one the OOM killer picks.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	if err := buildRoot(root, tmpMB, uid, gid); err != nil {
		return err
	}
	if err := send(ctl, initMsg{Ready: true}); err != nil {
		return err
	}
	buf := make([]byte, maxStartMsg)
	n, err := ctl.Read(buf)
	if err != nil || n == 0 {
		return nil // the platform closed the slot before using it
	}
	var m startMsg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return fmt.Errorf("sandbox init: bad start message: %w", err)
	}
	if err := enterRoot(&m); err != nil {
		return err
	}
	cmd := &exec.Cmd{
		Path:   m.Path,
		Args:   m.Args,
		Env:    m.Env,
		Dir:    "/var/task",
		Stdout: os.NewFile(stdoutFd, "stdout"),
		Stderr: os.NewFile(stderrFd, "stderr"),
		SysProcAttr: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
			Setsid:     true,
		},
	}
	for _, rl := range []struct {
		res int
		v   uint64
	}{{unix.RLIMIT_NOFILE, m.NoFile}, {unix.RLIMIT_CORE, 0}, {unix.RLIMIT_NPROC, m.Procs}} {
		if err := unix.Setrlimit(rl.res, &unix.Rlimit{Cur: rl.v, Max: rl.v}); err != nil {
			return fmt.Errorf("sandbox init: setrlimit: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox init: no_new_privs: %w", err)
	}
	// The seccomp filter is a thread's: install it on the thread that
	// forks the function, which inherits it.
	runtime.LockOSThread()
	if err := denySyscalls(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Path, err)
	}
	pid := cmd.Process.Pid
	// The child inherited init's -1000; it must be the one killed at the limit.
	_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte("0"), 0)
	cmd.Stdout.(*os.File).Close()
	cmd.Stderr.(*os.File).Close()
	if err := send(ctl, initMsg{Pid: pid}); err != nil {
		return err
	}
	// The platform going away (its end of the socket closes) ends the sandbox.
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := ctl.Read(b); err != nil {
				os.Exit(2)
			}
		}
	}()
	// PID 1 reaps every orphan; the sandbox ends when its main process does.
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sandbox init: wait: %w", err)
		}
		if wpid != pid {
			continue
		}
		m := initMsg{Exited: true, Code: ws.ExitStatus()}
		if ws.Signaled() {
			m.Signal = int(ws.Signal())
		}
		return send(ctl, m)
	}
}

// A start message is one datagram: it must fit the socket's buffer (env is at
// most 64 KB).
const maxStartMsg = 128 << 10

func send(ctl *os.File, m initMsg) error {
	b, _ := json.Marshal(m)
	_, err := ctl.Write(b)
	return err
}

// buildRoot makes the sandbox's file system under root (a tmpfs in init's
// own mount namespace): the host's /usr read-only, a minimal /etc, /dev
// with the harmless devices, a private /tmp, /proc of the new pid
// namespace, and empty /var/task and /var/runtime for the code.
func buildRoot(root string, tmpMB, uid, gid int) error {
	const nosuid = unix.MS_NOSUID | unix.MS_NODEV
	steps := []func() error{
		func() error { return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") },
		func() error { return unix.Mount("tmpfs", root, "tmpfs", nosuid, "size=1m,mode=755") },
		func() error { return bindRO("/usr", filepath.Join(root, "usr")) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("sandbox init: mount: %w", err)
		}
	}
	// Merged-/usr hosts have /bin -> usr/bin: copy the links; bind real dirs.
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		host := "/" + d
		if target, err := os.Readlink(host); err == nil {
			if err := os.Symlink(target, filepath.Join(root, d)); err != nil {
				return err
			}
			continue
		}
		if isDir(host) {
			if err := bindRO(host, filepath.Join(root, d)); err != nil {
				return err
			}
		}
	}
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"passwd":   fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:%d:%d:sandbox:/tmp:/usr/sbin/nologin\n", uid, gid),
		"group":    fmt.Sprintf("root:x:0:\nsbx_user:x:%d:\n", gid),
		"hosts":    "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		"hostname": "sandbox\n",
	}
	if b := resolvConf(); b != nil {
		files["resolv.conf"] = string(b)
	}
	for _, f := range []string{"nsswitch.conf", "mime.types"} {
		if b, err := os.ReadFile("/etc/" + f); err == nil {
			files[f] = string(b)
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	if err := os.Symlink("/usr/share/zoneinfo/UTC", filepath.Join(etc, "localtime")); err != nil {
		return err
	}
	for _, d := range []string{"ssl", "ca-certificates", "alternatives"} {
		if isDir("/etc/" + d) {
			if err := bindRO("/etc/"+d, filepath.Join(etc, d)); err != nil {
				return err
			}
		}
	}
	dev := filepath.Join(root, "dev")
	if err := mountTmpfs(dev, unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=755"); err != nil {
		return err
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		p := filepath.Join(dev, d)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("sandbox init: bind /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	if err := mountTmpfs(filepath.Join(dev, "shm"), nosuid|unix.MS_NOEXEC, "size=16m,mode=1777"); err != nil {
		return err
	}
	if err := mountTmpfs(filepath.Join(root, "tmp"), nosuid, fmt.Sprintf("size=%dm,mode=1777", tmpMB)); err != nil {
		return err
	}
	proc := filepath.Join(root, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		return err
	}
	// hidepid=2: the function sees only its own processes, not init's.
	if err := unix.Mount("proc", proc, "proc", nosuid|unix.MS_NOEXEC, "hidepid=2"); err != nil {
		return fmt.Errorf("sandbox init: mount /proc: %w", err)
	}
	for _, d := range []string{"var", "var/task", "var/runtime", "opt", ".host"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Sethostname([]byte("sandbox")); err != nil {
		return fmt.Errorf("sandbox init: sethostname: %w", err)
	}
	// The root itself is read-only from here on.
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_REMOUNT|unix.MS_RDONLY|nosuid, "size=1m,mode=755"); err != nil {
		return fmt.Errorf("sandbox init: remount root read-only: %w", err)
	}
	return pivot(root)
}

// hostFd is init's handle on the host's file system after the pivot: the
// code is bound in through it at start. It is close-on-exec, and the
// function's unprivileged user can't reach init's fds in /proc/1/fd.
var hostFd = -1

// pivot makes root the sandbox's / ahead of the start. The host's tree is
// not unmounted (an unmount waits for an RCU grace period: milliseconds
// on the cold start's path) but stacked at /.host under an empty,
// read-only tmpfs, out of sight; init keeps a handle on it.
func pivot(root string) error {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	hostFd = fd
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	if err := unix.PivotRoot(".", ".host"); err != nil {
		return fmt.Errorf("sandbox init: pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	const hide = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("tmpfs", "/.host", "tmpfs", hide, "size=4k,mode=000"); err != nil {
		return fmt.Errorf("sandbox init: cover the host's tree: %w", err)
	}
	return nil
}

// enterRoot binds the code (host paths, reached through hostFd) in.
func enterRoot(m *startMsg) error {
	host := func(p string) string { return "/proc/self/fd/" + strconv.Itoa(hostFd) + filepath.Clean("/"+p) }
	if err := bindRO(host(m.Code), "/var/task"); err != nil {
		return err
	}
	if m.Runtime != "" {
		if err := bindRO(host(m.Runtime), "/var/runtime"); err != nil {
			return err
		}
	}
	return nil
}

func mountTmpfs(dir string, flags uintptr, opts string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("sandbox init: mount tmpfs %s: %w", dir, err)
	}
	return nil
}

// bindRO bind-mounts src at dst (made if missing) read-only, nosuid, nodev.
func bindRO(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("sandbox init: bind %s: %w", src, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("sandbox init: read-only %s: %w", src, err)
	}
	return nil
}

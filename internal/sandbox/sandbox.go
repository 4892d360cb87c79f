// Package sandbox runs the processes of process functions in real
// sandboxes. Each instance gets its own pid, mount, ipc, uts and network
// namespaces; a cgroup with a memory limit (swap included) and a pids
// limit; rlimits (open files, no core dumps); no_new_privs; an unprivileged
// uid of its own; a root file system that shows the host's /usr read-only, a
// minimal /etc (no shadow, no host users), harmless devices, the code
// read-only at /var/task and a private tmpfs /tmp whose pages count against
// the memory limit and vanish with the instance. The platform's data
// directory and other instances' files, processes and environment are not
// in sight.
//
// The only way out is one local endpoint: a listener on 127.0.0.1:9001
// inside the instance's own network namespace, held by the platform (the
// Lambda Runtime API). It answers that instance only, because nothing else
// is in that namespace. Network: none means the namespace has only loopback.
//
// Cold starts stay off the slow paths: a slot (network namespace with its
// listener, the other namespaces, a root file system, an init process
// waiting as PID 1) is made ahead of need in the background; starting an
// instance binds its code in, pivots into the root and execs, which is
// little more than the exec itself.
//
// Init is this binary re-executed (see MaybeInit). It is PID 1 of the
// sandbox: it reaps orphans, and when the function's process exits (or the
// platform's end of its control socket closes) it exits, and the kernel
// kills whatever else ran in the sandbox.
//
// Where the host can't sandbox (not root, not Linux, no cgroup memory
// controller), New fails with the reason unless Isolation is IsolationNone:
// then processes run as plain children of the platform with the Runtime API
// on a loopback port of the host, with no limits but the timeout.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Isolation modes.
const (
	IsolationSandbox = "sandbox" // namespaces, cgroups, unprivileged uid (the default)
	IsolationNone    = "none"    // plain processes: for hosts that can't sandbox, and trusted code
)

// Defaults of Config.
const (
	DefaultPids   = 256
	DefaultTmpMB  = 512
	DefaultNoFile = 1024
	DefaultSpare  = 2
	// APIPort is where the Runtime API listens inside each sandbox.
	APIPort = 9001
	uidBase = 200000
	uidSpan = 60000
)

// Config sets up a Manager.
type Config struct {
	// Dir is a directory the platform owns (under its data directory).
	Dir string
	// Isolation is IsolationSandbox (default) or IsolationNone.
	Isolation string
	// Spare is how many ready slots are kept made ahead.
	Spare int
	// Pids caps the processes and threads of one instance.
	Pids int
	// TmpMB is the size of an instance's /tmp (it counts against its memory).
	TmpMB int
	// NoFile caps an instance's open files.
	NoFile uint64
}

// Manager makes slots and keeps a few spare.
type Manager struct {
	cfg     Config
	root    string // mountpoint of the sandboxes' roots (each in its own mount namespace)
	cg      *cgroups
	exe     string
	nextUID atomic.Uint32
	nextID  atomic.Uint64

	mu     sync.Mutex
	spare  map[string][]*Slot // by network mode
	making map[string]int
	closed bool
	wg     sync.WaitGroup

	netOnce sync.Once
	net     *outbound
	netErr  error
}

// Network modes of a slot.
const (
	NetworkNone     = "none"     // loopback only
	NetworkOutbound = "outbound" // a veth to the host, masqueraded, filtered
)

// Check reports why this host can't run sandboxes, or nil if it can.
func Check() error {
	if runtime.GOOS != "linux" {
		return errors.New("sandboxes need Linux namespaces and cgroups (this is " + runtime.GOOS + ")")
	}
	if os.Geteuid() != 0 {
		return errors.New("sandboxes need root (namespaces, cgroups, mounts); run as root or set isolation: none")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return errors.New("sandboxes need namespaces: /proc/self/ns/net is missing")
	}
	return nil
}

// New checks the host and returns a Manager. With Isolation none it never
// fails for lack of privileges.
func New(cfg Config) (*Manager, error) {
	if cfg.Isolation == "" {
		cfg.Isolation = IsolationSandbox
	}
	if cfg.Isolation != IsolationSandbox && cfg.Isolation != IsolationNone {
		return nil, fmt.Errorf("sandbox: isolation %q is not supported (accepted: sandbox, none)", cfg.Isolation)
	}
	cfg.Pids = orDefault(cfg.Pids, DefaultPids)
	cfg.TmpMB = orDefault(cfg.TmpMB, DefaultTmpMB)
	cfg.Spare = orDefault(cfg.Spare, DefaultSpare)
	if cfg.NoFile == 0 {
		cfg.NoFile = DefaultNoFile
	}
	m := &Manager{cfg: cfg, spare: map[string][]*Slot{}, making: map[string]int{}}
	// Uids start at a random point of their span: a uid's kernel state that
	// outlives its processes (keyrings, which seccomp also denies) must not
	// meet the next server's sandboxes.
	var r [4]byte
	_, _ = rand.Read(r[:])
	m.nextUID.Store(binary.LittleEndian.Uint32(r[:]) % uidSpan)
	if cfg.Isolation == IsolationNone {
		return m, nil
	}
	if err := Check(); err != nil {
		return nil, fmt.Errorf("process functions can't be sandboxed here: %w", err)
	}
	if !initCapable.Load() {
		return nil, errors.New("sandbox: this program did not call sandbox.MaybeInit first thing, so it can't be the sandboxes' init")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	m.exe = exe
	m.root = filepath.Join(cfg.Dir, "root")
	if err := os.MkdirAll(m.root, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	// Each server process has its own cgroup parent, removed at Close.
	m.cg, err = findCgroups("hostless-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// Isolation returns the manager's isolation mode.
func (m *Manager) Isolation() string { return m.cfg.Isolation }

// Take returns a ready slot with the network mode: a spare one if there
// is one (and makes a new spare in the background), else one made now.
func (m *Manager) Take(ctx context.Context, network string) (*Slot, error) {
	if network != NetworkNone && network != NetworkOutbound {
		return nil, fmt.Errorf("sandbox: network %q is not supported (none, outbound)", network)
	}
	if m.cfg.Isolation == IsolationNone {
		return m.plainSlot()
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("sandbox: closed")
	}
	var s *Slot
	if spare := m.spare[network]; len(spare) > 0 {
		s = spare[len(spare)-1]
		m.spare[network] = spare[:len(spare)-1]
	}
	m.refillLocked(network, refillDelay)
	m.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return m.makeSlot(ctx, network)
}

// Prewarm starts making spare slots with the network mode.
func (m *Manager) Prewarm(network string) {
	if m.cfg.Isolation == IsolationNone || (network != NetworkNone && network != NetworkOutbound) {
		return
	}
	m.mu.Lock()
	m.refillLocked(network, 0)
	m.mu.Unlock()
}

// refillDelay keeps the making of a replacement slot (a re-exec and new
// namespaces: a few ms of CPU) off the cold start that took a slot.
const refillDelay = 20 * time.Millisecond

func (m *Manager) refillLocked(network string, delay time.Duration) {
	for !m.closed && len(m.spare[network])+m.making[network] < m.cfg.Spare {
		m.making[network]++
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if delay > 0 {
				time.Sleep(delay)
			}
			s, err := m.makeSlot(context.Background(), network)
			m.mu.Lock()
			defer m.mu.Unlock()
			m.making[network]--
			if err != nil {
				return // Take makes one itself and reports the error
			}
			if m.closed {
				s.Close()
				return
			}
			m.spare[network] = append(m.spare[network], s)
		}()
	}
}

// Close stops the spare slots and removes the manager's cgroups. Slots
// taken must be closed by their owners first.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	spare := m.spare
	m.spare = map[string][]*Slot{}
	m.mu.Unlock()
	m.wg.Wait()
	m.netOnce.Do(func() {}) // waits for a setup in progress; m.net is settled after
	for _, slots := range spare {
		for _, s := range slots {
			s.Close()
		}
	}
	if m.net != nil {
		m.net.remove()
	}
	if m.cg != nil {
		m.cg.parent().remove()
	}
}

// Slot is a sandbox ready to run one process.
type Slot struct {
	m        *Manager
	id       string
	uid      int
	ln       net.Listener
	taskRoot string
	// Sandboxed slots:
	init   *exec.Cmd
	ctl    *os.File
	grp    *group
	stdout *os.File
	stderr *os.File
	msgs   chan initMsg
	// Plain slots:
	plain *exec.Cmd
	// Outbound slots: the manager's rules and the host end of the veth;
	// allowed is set once Start allowed ranges for it.
	net     *outbound
	veth    string
	allowed bool

	started  atomic.Bool
	exited   chan struct{}
	exit     Exit
	exitOnce sync.Once
	closed   atomic.Bool
}

// Exit says how an instance's process ended.
type Exit struct {
	Code   int  // exit status (-1 if killed by a signal)
	Signal int  // the signal that killed it, or 0
	OOM    bool // the kernel killed it at its memory limit
	// Err is set when the sandbox itself failed.
	Err error
}

func (e Exit) String() string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case e.OOM:
		return "killed at its memory limit"
	case e.Signal != 0:
		return "killed by signal " + unix.SignalName(syscall.Signal(e.Signal))
	default:
		return "exited with status " + strconv.Itoa(e.Code)
	}
}

// Listener is the Runtime API's listener: 127.0.0.1:9001 inside the slot's
// network namespace (a loopback port of the host without isolation).
func (s *Slot) Listener() net.Listener { return s.ln }

// APIAddr is the address the process reaches the Runtime API at.
func (s *Slot) APIAddr() string { return s.ln.Addr().String() }

// TaskRoot is where the process sees its code.
func (s *Slot) TaskRoot() string { return s.taskRoot }

// makeSlot creates the namespaces, the listener inside the network
// namespace, the cgroup and init, and waits until init has built the root.
func (m *Manager) makeSlot(ctx context.Context, network string) (*Slot, error) {
	var o *outbound
	if network == NetworkOutbound {
		var err error
		if o, err = m.setupOutbound(); err != nil {
			return nil, err
		}
	}
	id := strconv.FormatUint(m.nextID.Add(1), 36)
	uid := uidBase + int(m.nextUID.Add(1)%uidSpan)
	s := &Slot{m: m, id: id, uid: uid, taskRoot: "/var/task", msgs: make(chan initMsg, 4), exited: make(chan struct{})}
	grp, err := m.cg.newGroup("slot-"+id, m.cfg.Pids)
	if err != nil {
		return nil, err
	}
	s.grp = grp
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		grp.remove()
		return nil, fmt.Errorf("sandbox: socketpair: %w", err)
	}
	s.ctl = os.NewFile(uintptr(pair[0]), "ctl")
	child := os.NewFile(uintptr(pair[1]), "ctl-child")
	defer child.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	defer outW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		s.cleanup()
		return nil, err
	}
	defer errW.Close()
	s.stdout, s.stderr = outR, errR
	s.init = &exec.Cmd{
		Path:       m.exe,
		Args:       []string{initArg, strconv.Itoa(m.cfg.TmpMB), strconv.Itoa(uid), strconv.Itoa(uid)},
		Env:        []string{"GOMAXPROCS=1", "GOTRACEBACK=none", rootEnv + "=" + m.root},
		ExtraFiles: []*os.File{child, outW, errW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
			Setsid:     true,
		},
	}
	if err := s.startInNetns(o); err != nil {
		if s.init.Process != nil {
			_ = s.init.Process.Kill()
			_ = s.init.Wait()
		}
		s.cleanup()
		return nil, err
	}
	go func() {
		s.readCtl()
		// Init's socket closed: it has exited (its report, if any, came first).
		err := s.init.Wait()
		s.finish(Exit{Code: -1, Err: fmt.Errorf("sandbox init ended: %v", err)})
	}()
	select {
	case msg := <-s.msgs:
		if msg.Error != "" || !msg.Ready {
			s.Close()
			return nil, fmt.Errorf("sandbox: init failed: %s", msg.Error)
		}
		// Init joins the group now, off the cold start's path: moving a
		// task between cgroups waits for an RCU grace period (ms). What
		// init allocated so far stays charged to the platform; the
		// function's process is born in the group.
		if err := grp.add(s.init.Process.Pid); err != nil {
			s.Close()
			return nil, err
		}
	case <-s.exited:
		s.Close()
		return nil, fmt.Errorf("sandbox: init failed: %v", s.exit)
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	return s, nil
}

// startInNetns makes a network namespace on a locked thread, brings its
// loopback up, listens on 127.0.0.1:9001 in it, starts init from that
// thread (init inherits the namespace), and returns the thread to the
// host's namespace.
func (s *Slot) startInNetns(o *outbound) error {
	errc := make(chan error, 1)
	var ns *os.File
	go func() {
		runtime.LockOSThread()
		// If the thread can't go back to the host's namespace it must not
		// serve other goroutines: leaving it locked makes it exit with us.
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("sandbox: %w", err)
			return
		}
		defer host.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("sandbox: new network namespace: %w", err)
			return
		}
		// IPv4 only: the rules that keep sandboxes from the host are
		// IPv4 rules, and an IPv6 link-local address on the veth would
		// reach the host's services around them.
		for _, f := range []string{"all", "default"} {
			_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1"), 0)
		}
		err = s.listenAndStart()
		if err == nil && o != nil {
			ns, err = os.Open("/proc/thread-self/ns/net")
		}
		if e := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); e == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return err
	}
	if o == nil {
		return nil
	}
	defer ns.Close()
	s.net, s.veth = o, o.prefix+s.id
	return o.wire(s.veth, ns)
}

func (s *Slot) listenAndStart() error {
	if err := loopbackUp(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(APIPort))
	if err != nil {
		return fmt.Errorf("sandbox: listen in the sandbox: %w", err)
	}
	s.ln = ln
	if err := s.init.Start(); err != nil {
		return fmt.Errorf("sandbox: start init: %w", err)
	}
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("sandbox: bring loopback up: %w", err)
	}
	return nil
}

// readCtl reads init's messages until its socket closes.
func (s *Slot) readCtl() {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.ctl.Read(buf)
		if err != nil || n == 0 {
			return
		}
		var msg initMsg
		if json.Unmarshal(buf[:n], &msg) != nil {
			continue
		}
		if msg.Exited {
			e := Exit{Code: msg.Code, Signal: msg.Signal}
			if msg.Signal != 0 {
				e.Code = -1
			}
			s.finish(e)
			continue
		}
		if msg.Error != "" && s.started.Load() {
			s.finish(Exit{Code: -1, Err: errors.New(msg.Error)})
			continue
		}
		select {
		case s.msgs <- msg:
		default: // init sends two messages before its exit; more is a fault, not a reason to block
		}
	}
}

// finish records the first way the instance ended.
func (s *Slot) finish(e Exit) {
	s.exitOnce.Do(func() {
		if s.grp != nil && s.grp.oomKills() > 0 {
			e.OOM = true
		}
		s.exit = e
		close(s.exited)
	})
}

// Spec is what to run in a slot.
type Spec struct {
	// Code is the host directory with the function's code, shown read-only
	// at TaskRoot.
	Code string
	// Runtime is a host directory shown read-only at /var/runtime (shims), or "".
	Runtime string
	// Path is the program, as the sandbox sees it; Args its argv.
	Path string
	Args []string
	Env  []string
	// MemoryMB limits the instance's memory, /tmp included.
	MemoryMB int
	// Allow are IPv4 ranges (CIDR) an outbound slot may reach although the
	// rules refuse them (private ranges, the host's own addresses).
	Allow []string
}

// Start runs spec's program in the slot. The slot serves one process.
func (s *Slot) Start(ctx context.Context, spec Spec) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("sandbox: slot already used")
	}
	if s.plain != nil {
		return s.startPlain(spec)
	}
	if err := s.grp.setMemory(spec.MemoryMB); err != nil {
		return err
	}
	if len(spec.Allow) > 0 {
		if s.net == nil {
			return errors.New("sandbox: ranges to allow need an outbound slot")
		}
		s.allowed = true
		if err := s.net.allow(s.veth, spec.Allow); err != nil {
			return err
		}
	}
	b, err := json.Marshal(startMsg{Code: spec.Code, Runtime: spec.Runtime, Path: spec.Path, Args: spec.Args, Env: spec.Env, NoFile: s.m.cfg.NoFile, Procs: uint64(s.m.cfg.Pids)})
	if err != nil {
		return err
	}
	if len(b) > maxStartMsg {
		return errors.New("sandbox: arguments and environment too large")
	}
	if _, err := s.ctl.Write(b); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	select {
	case msg := <-s.msgs:
		if msg.Error != "" {
			return fmt.Errorf("sandbox: %s", msg.Error)
		}
		return nil
	case <-s.exited:
		return fmt.Errorf("sandbox: %v", s.exit)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stdout and Stderr are the read ends of the process's output.
func (s *Slot) Stdout() *os.File { return s.stdout }
func (s *Slot) Stderr() *os.File { return s.stderr }

// Exited is closed when the process (or the sandbox) has ended.
func (s *Slot) Exited() <-chan struct{} { return s.exited }

// Exit says how it ended; valid after Exited is closed.
func (s *Slot) Exit() Exit { return s.exit }

// MemoryPeak is the most memory the instance used, in bytes (0 if unknown).
func (s *Slot) MemoryPeak() int64 {
	if s.grp == nil {
		return 0
	}
	return s.grp.memoryPeak()
}

// Kill kills everything in the slot and waits for it to end; the output
// pipes stay open to be drained. Close releases the rest.
func (s *Slot) Kill() {
	if s.init != nil && s.init.Process != nil {
		_ = s.init.Process.Kill() // PID 1 gone: the kernel kills the namespace
	}
	if s.plain != nil && s.plain.Process != nil {
		_ = syscall.Kill(-s.plain.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

// Close kills everything in the slot and releases it.
func (s *Slot) Close() {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	s.Kill()
	s.cleanup()
}

func (s *Slot) cleanup() {
	for _, f := range []*os.File{s.ctl, s.stdout, s.stderr} {
		if f != nil {
			_ = f.Close()
		}
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.grp != nil {
		s.grp.remove()
	}
	if s.allowed {
		s.net.disallow(s.veth)
	}
}

// plainSlot is a slot without isolation: a loopback port of the host.
func (m *Manager) plainSlot() (*Slot, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return &Slot{m: m, ln: ln, plain: &exec.Cmd{}, exited: make(chan struct{})}, nil
}

func (s *Slot) startPlain(spec Spec) error {
	s.taskRoot = spec.Code
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	s.stdout, s.stderr = outR, errR
	path := spec.Path
	if rel, ok := cutPrefixDir(path, "/var/task"); ok {
		path = filepath.Join(spec.Code, rel)
	} else if rel, ok := cutPrefixDir(path, "/var/runtime"); ok && spec.Runtime != "" {
		path = filepath.Join(spec.Runtime, rel)
	}
	args := append([]string(nil), spec.Args...)
	for i, a := range args {
		if rel, ok := cutPrefixDir(a, "/var/runtime"); ok && spec.Runtime != "" {
			args[i] = filepath.Join(spec.Runtime, rel)
		}
	}
	if len(args) > 0 {
		args[0] = path
	}
	s.plain = &exec.Cmd{Path: path, Args: args, Env: spec.Env, Dir: spec.Code, Stdout: outW, Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	err = s.plain.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", spec.Path, err)
	}
	go func() {
		err := s.plain.Wait()
		e := Exit{Code: s.plain.ProcessState.ExitCode()}
		if ws, ok := s.plain.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = int(ws.Signal())
		}
		if e.Code == -1 && e.Signal == 0 {
			e.Err = err
		}
		s.finish(e)
	}()
	return nil
}

// cutPrefixDir returns p relative to dir if p is dir or under it.
func cutPrefixDir(p, dir string) (string, bool) {
	if p == dir {
		return ".", true
	}
	if len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/' {
		return p[len(dir)+1:], true
	}
	return "", false
}

// SpareReady returns how many made-ahead slots are ready now.
func (m *Manager) SpareReady(network string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.spare[network])
}

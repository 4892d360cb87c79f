package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// denySyscalls installs a seccomp filter on the calling thread (init's
// forking thread: the function inherits it; no_new_privs must be set) that
// refuses what a function never needs and what reaches past the
// namespaces: kernel keyrings (not namespaced: they outlive processes and
// are shared by uid), new user namespaces (the usual first step of a
// kernel exploit), bpf, perf_event_open and userfaultfd. clone3 answers
// ENOSYS (its flags can't be inspected), so that libc falls back to clone.
// Other ABIs (x32, 32-bit) on the same kernel are killed.
func denySyscalls() error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("sandbox: no seccomp filter for %s", runtime.GOARCH)
	}
	const (
		ldW    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		offNr  = 0
		offArc = 4
		offArg = 16 // args[0], low 32 bits (little endian)
	)
	eperm := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	p := []unix.SockFilter{
		{Code: ldW, K: offArc},
		{Code: jeq, Jt: 1, K: arch},
		{Code: ret, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: ldW, K: offNr},
		{Code: jge, Jf: 1, K: 0x40000000}, // the x32 ABI's numbers
		{Code: ret, K: eperm},
	}
	deny := func(nr uintptr, action uint32) {
		p = append(p, unix.SockFilter{Code: jeq, Jf: 1, K: uint32(nr)}, unix.SockFilter{Code: ret, K: action})
	}
	for _, nr := range []uintptr{unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_BPF,
		unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD} {
		deny(nr, eperm)
	}
	deny(unix.SYS_CLONE3, enosys)
	// clone and unshare: refused with CLONE_NEWUSER, allowed otherwise.
	for _, nr := range []uintptr{unix.SYS_CLONE, unix.SYS_UNSHARE} {
		p = append(p,
			unix.SockFilter{Code: jeq, Jf: 4, K: uint32(nr)},
			unix.SockFilter{Code: ldW, K: offArg},
			unix.SockFilter{Code: jset, Jf: 1, K: unix.CLONE_NEWUSER},
			unix.SockFilter{Code: ret, K: eperm},
			unix.SockFilter{Code: ret, K: allow},
		)
	}
	p = append(p, unix.SockFilter{Code: ret, K: allow})
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return fmt.Errorf("sandbox init: seccomp: %w", err)
	}
	return nil
}

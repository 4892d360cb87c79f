package storage_test

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsTopdirFL is FS_TOPDIR_FL (chattr +T).
const fsTopdirFL = 0x00020000

// spreadSubdirs asks ext4 to place each subdirectory of dir in a block
// group of its own choosing, as it does the root's (chattr +T), instead of
// next to dir: each run's files then land away from the inodes earlier
// runs deleted. Best effort: other file systems ignore or refuse it.
func spreadSubdirs(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFL))
}

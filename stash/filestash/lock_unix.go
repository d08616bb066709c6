//go:build unix

package filestash

import (
	"errors"
	"os"
	"syscall"
)

// openNoBlock makes opening a FIFO or a device return at once instead of
// waiting for a writer, and refuses a symbolic link as the last component.
const openNoBlock = syscall.O_NONBLOCK | syscall.O_NOFOLLOW

// flock takes an exclusive advisory lock on f, which other processes
// sharing the directory respect too.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func funlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

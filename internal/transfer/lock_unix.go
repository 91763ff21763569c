//go:build unix

package transfer

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// errLocked means another process holds the lock.
var errLocked = errors.New("locked by another process")

// tryLock creates and exclusively flocks path without waiting. Because the
// holder removes the file before unlocking, a lock taken on a file that is no
// longer at path is dropped and retried.
func tryLock(path string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EAGAIN) {
				return nil, errLocked
			}
			return nil, fmt.Errorf("flock: %w", err)
		}
		held, err1 := f.Stat()
		cur, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, cur) {
			return f, nil
		}
		_ = f.Close() // raced with an unlock that removed the file: try again
	}
	return nil, errLocked
}

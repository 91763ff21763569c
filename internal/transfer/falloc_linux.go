//go:build linux

package transfer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f (so a full disk fails early and the
// file is not fragmented by parallel writers) and sets its length.
func preallocate(f *os.File, size int64) error {
	if size <= 0 {
		return f.Truncate(size)
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTSUP) &&
		!errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return f.Truncate(size)
}

//go:build !linux

package transfer

import "os"

// preallocate sets f's length; there is no portable fallocate.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(f *os.File, off, n int64) {}

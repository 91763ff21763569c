//go:build !unix

package transfer

import (
	"errors"
	"os"
)

// errLocked means the lock cannot be taken; without flock every keyed fetch
// uses a private temp file, so concurrent processes never share a partial file.
var errLocked = errors.New("file locking unsupported")

func tryLock(string) (*os.File, error) { return nil, errLocked }

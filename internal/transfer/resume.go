package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// stateVersion changes whenever the meaning of the state file changes; a
// state of another version is discarded.
const stateVersion = 1

// fetchState is the JSON resume record kept beside a keyed partial file. It
// lists only chunks whose bytes were fsynced before the record was written,
// so a crash at any point leaves a record that undercounts, never overcounts.
type fetchState struct {
	Version    int    `json:"version"`
	Key        string `json:"key"`
	Offset     int64  `json:"offset"`
	Length     int64  `json:"length"`
	ObjectSize int64  `json:"object_size"`
	ChunkSize  int64  `json:"chunk_size"`
	Done       []int  `json:"done"` // indexes of complete chunks, ascending
}

// matches reports whether s describes the same transfer as want.
func (s *fetchState) matches(want *fetchState) bool {
	return s.Version == want.Version && s.Key == want.Key && s.Offset == want.Offset &&
		s.Length == want.Length && s.ObjectSize == want.ObjectSize && s.ChunkSize == want.ChunkSize
}

// partialBase is the file name stem for key inside Dir.
func partialBase(key string) string {
	sum := sha256.Sum256([]byte(key))
	return ".sregistry-" + hex.EncodeToString(sum[:])[:16]
}

// PartialPaths returns the partial, state and lock file paths Fetch uses in
// dir for key, e.g. for a "clean" command.
func PartialPaths(dir, key string) (partial, state, lock string) {
	base := filepath.Join(dir, partialBase(key))
	return base + ".partial", base + ".state", base + ".lock"
}

// dest is the file a Fetch writes, with its resume state and lock if keyed.
type dest struct {
	file *os.File
	path string

	keyed     bool     // path is the shared partial file, guarded by lock
	lock      *os.File // held flock
	lockPath  string
	statePath string
	done      []int // chunks restored from a matching state
}

// openDest opens the destination: the keyed partial file when the lock can
// be taken (restoring its state when it matches want), else a private temp file.
func (d *Downloader) openDest(dir, key string, want *fetchState) (*dest, error) {
	if dir == "" {
		dir = "."
	}
	if key != "" {
		partial, state, lockPath := PartialPaths(dir, key)
		lock, err := tryLock(lockPath)
		switch {
		case err == nil:
			dst, err := openPartial(partial, state, lock, lockPath, want)
			if err != nil {
				unlock(lock, lockPath)
				return nil, err
			}
			return dst, nil
		case errors.Is(err, errLocked):
			d.debugf("%s is in use by another process; using a private temp file", filepath.Base(lockPath))
		default:
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
	}
	f, err := os.CreateTemp(dir, ".sregistry-tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	return &dest{file: f, path: f.Name()}, nil
}

func openPartial(partial, statePath string, lock *os.File, lockPath string, want *fetchState) (*dest, error) {
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open partial file: %w", err)
	}
	dst := &dest{file: f, path: partial, keyed: true, lock: lock, lockPath: lockPath, statePath: statePath}
	if st, ok := loadState(statePath); ok && st.matches(want) {
		if fi, err := f.Stat(); err == nil && fi.Size() == want.Length {
			nchunks := numChunks(want.Length, want.ChunkSize)
			for _, i := range st.Done {
				if i >= 0 && i < nchunks {
					dst.done = append(dst.done, i)
				}
			}
			slices.Sort(dst.done)
			dst.done = slices.Compact(dst.done)
			return dst, nil
		}
	}
	// No usable state: whatever is in the partial file cannot be trusted.
	_ = os.Remove(statePath)
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("reset partial file: %w", err)
	}
	return dst, nil
}

func loadState(path string) (*fetchState, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var st fetchState
	if json.Unmarshal(b, &st) != nil {
		return nil, false
	}
	return &st, true
}

// writeState replaces the state file atomically (temp file, fsync, rename).
func writeState(path string, st *fetchState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// finish closes the destination after a failed fetch. A keyed partial file
// that has resumable state is kept (for the next run); anything else is removed.
func (dst *dest) fail(keep bool) {
	_ = dst.file.Close()
	if !dst.keyed {
		_ = os.Remove(dst.path)
		return
	}
	if !keep {
		_ = os.Remove(dst.path)
		_ = os.Remove(dst.statePath)
	}
	unlock(dst.lock, dst.lockPath)
}

// release is Result.Release for a keyed destination: the caller has renamed
// or removed the partial file, so its state and lock go too.
func (dst *dest) release() {
	if !dst.keyed {
		return
	}
	_ = os.Remove(dst.statePath)
	unlock(dst.lock, dst.lockPath)
}

// unlock removes the lock file and then drops the lock. Removing first is
// safe because tryLock re-checks that the file it locked is still the one at
// lockPath.
func unlock(lock *os.File, lockPath string) {
	if lock == nil {
		return
	}
	_ = os.Remove(lockPath)
	_ = lock.Close() // closing the descriptor releases the flock
}

// stateSaver records completed chunks: every few chunks (or seconds) it
// fsyncs the data file and then rewrites the state listing them. Saving runs
// in its own goroutine so that a slow fsync never stalls a download stream;
// the state only ever lists chunks completed before the fsync that covered
// them started, so a crash at any point leaves a state that tells the truth.
type stateSaver struct {
	path string
	file *os.File

	mu       sync.Mutex
	st       fetchState
	pending  []int // completed chunks not yet in the state file, in completion order
	lastSave time.Time
	err      error // first background save error

	saveMu sync.Mutex // serialises saves (background and final)
	kick   chan struct{}
	done   chan struct{}
}

const (
	saveEveryChunks = 4
	saveEveryTime   = 5 * time.Second
)

// newStateSaver returns a saver with its background goroutine running; stop it.
func newStateSaver(path string, file *os.File, st fetchState) *stateSaver {
	s := &stateSaver{path: path, file: file, st: st, lastSave: time.Now(),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	go s.loop(s.kick)
	return s
}

func (s *stateSaver) loop(kick <-chan struct{}) {
	defer close(s.done)
	for range kick {
		if err := s.save(); err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
		}
	}
}

// complete notes chunk i as fully written and asks for a save when enough
// accumulated. It never blocks on the disk; it returns the error of an
// earlier background save, if any.
func (s *stateSaver) complete(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, i)
	due := len(s.pending) >= saveEveryChunks || time.Since(s.lastSave) >= saveEveryTime
	if due && s.kick != nil {
		select {
		case s.kick <- struct{}{}:
		default: // a save is already queued; it will include chunk i
		}
	}
	return s.err
}

// flush stops the background saver and saves all chunks noted so far.
func (s *stateSaver) flush() error {
	s.stop()
	if err := s.save(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *stateSaver) stop() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		if s.kick != nil {
			close(s.kick)
			s.kick = nil
		}
	}
	s.mu.Unlock()
	<-s.done
}

// save fsyncs the data file, then records the chunks that were complete
// before the fsync began.
func (s *stateSaver) save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	n := len(s.pending)
	batch := slices.Clone(s.pending)
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("sync partial file: %w", err)
	}
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	st.Done = append(slices.Clone(st.Done), batch...)
	slices.Sort(st.Done)
	st.Done = slices.Compact(st.Done)
	if err := writeState(s.path, &st); err != nil {
		return fmt.Errorf("save resume state: %w", err)
	}
	s.mu.Lock()
	s.st = st
	s.pending = slices.Delete(s.pending, 0, n) // appends since the snapshot stay pending
	s.lastSave = time.Now()
	s.mu.Unlock()
	return nil
}

// saved reports whether any chunk is recorded in the state file.
func (s *stateSaver) saved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.Done) > 0
}

func numChunks(length, chunk int64) int {
	if length <= 0 {
		return 0
	}
	return int((length + chunk - 1) / chunk)
}

package gitlabemu

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// archive is one job's materialised artifacts zip. It is built at most once
// (ready is closed when done); err records a failed build.
type archive struct {
	ready   chan struct{}
	path    string
	size    int64
	modTime time.Time
	etag    string
	entries []archiveEntry // in archive order
	err     error
}

// archiveEntry describes one zip entry, as the tree API and browse page show it.
type archiveEntry struct {
	Path  string // directories end with "/"
	Dir   bool
	Size  uint64 // uncompressed
	Mode  fs.FileMode
	index int // index in zip.Reader.File
}

// GeneratedContent returns the deterministic pseudo-random content of an
// Artifact that has only Size set: size bytes seeded by job id and path, so
// tests can recompute what a download must contain.
func GeneratedContent(jobID int64, artifactPath string, size int64) io.Reader {
	h := sha256.New()
	var idb [8]byte
	binary.LittleEndian.PutUint64(idb[:], uint64(jobID))
	h.Write([]byte("gitlabemu-content\x00"))
	h.Write(idb[:])
	h.Write([]byte(artifactPath))
	var seed [32]byte
	copy(seed[:], h.Sum(nil))
	return io.LimitReader(rand.NewChaCha8(seed), max(size, 0))
}

// archiveFor returns the job's archive, building it on first use. Concurrent
// callers for the same job wait for a single build.
func (s *Server) archiveFor(j *jobRec) (*archive, error) {
	s.archMu.Lock()
	a, ok := s.archives[j.ID]
	if !ok {
		a = &archive{ready: make(chan struct{})}
		s.archives[j.ID] = a
		s.archMu.Unlock()
		a.err = s.build(a, j)
		close(a.ready)
	} else {
		s.archMu.Unlock()
		<-a.ready
	}
	if a.err != nil {
		return nil, a.err
	}
	return a, nil
}

// dropArchive forgets a cached archive (when a job is replaced). The file
// stays until Close removes the directory.
func (s *Server) dropArchive(id int64) {
	s.archMu.Lock()
	delete(s.archives, id)
	s.archMu.Unlock()
}

// build writes the zip the way gitlab-runner lays it out: a directory entry
// for each parent folder, then the file; archive/zip switches to zip64 by
// itself for entries or offsets beyond 4 GiB.
func (s *Server) build(a *archive, j *jobRec) error {
	modTime := j.FinishedAt
	if modTime.IsZero() {
		modTime = j.CreatedAt
	}
	modTime = modTime.UTC().Truncate(time.Second)
	final := filepath.Join(s.dir, fmt.Sprintf("job-%d-artifacts.zip", j.ID))
	f, err := os.CreateTemp(s.dir, fmt.Sprintf("job-%d-*.zip.tmp", j.ID))
	if err != nil {
		return fmt.Errorf("gitlabemu: build archive of job %d: %w", j.ID, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("gitlabemu: build archive of job %d: %w", j.ID, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := zip.NewWriter(bw)
	seenDir := map[string]bool{}
	buf := make([]byte, 1<<20)
	for _, art := range j.Artifacts {
		name := strings.TrimPrefix(path.Clean("/"+art.Path), "/")
		if name == "" {
			return fail(fmt.Errorf("empty artifact path %q", art.Path))
		}
		for i := 0; i < len(name); i++ {
			if name[i] != '/' || seenDir[name[:i+1]] {
				continue
			}
			d := name[:i+1]
			seenDir[d] = true
			fh := &zip.FileHeader{Name: d, Method: zip.Store, Modified: modTime}
			fh.SetMode(fs.ModeDir | 0o755)
			if _, err := zw.CreateHeader(fh); err != nil {
				return fail(err)
			}
		}
		method := art.Method
		if method != zip.Deflate {
			method = zip.Store
		}
		fh := &zip.FileHeader{Name: name, Method: method, Modified: modTime}
		fh.SetMode(0o644)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return fail(err)
		}
		if err := writeContent(w, j.ID, name, art, buf); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chtimes(tmp, modTime, modTime); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	return a.index(final, modTime, j.ID)
}

// writeContent copies an artifact's content source into the zip entry.
func writeContent(w io.Writer, jobID int64, name string, art Artifact, buf []byte) error {
	switch {
	case art.Data != nil:
		_, err := w.Write(art.Data)
		return err
	case art.File != "":
		src, err := os.Open(art.File)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.CopyBuffer(w, src, buf)
		return err
	default:
		_, err := io.CopyBuffer(w, GeneratedContent(jobID, name, art.Size), buf)
		return err
	}
}

// index reads back the finished zip's central directory (cheap) to learn
// sizes and modes for the JSON, tree and browse views.
func (a *archive) index(p string, modTime time.Time, jobID int64) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("gitlabemu: reopen archive: %w", err)
	}
	defer zr.Close()
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	for i, f := range zr.File {
		a.entries = append(a.entries, archiveEntry{
			Path:  f.Name,
			Dir:   strings.HasSuffix(f.Name, "/"),
			Size:  f.UncompressedSize64,
			Mode:  f.Mode(),
			index: i,
		})
	}
	a.path, a.size, a.modTime = p, st.Size(), modTime
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%d", jobID, st.Size(), modTime.Unix()))
	a.etag = `"` + hex.EncodeToString(sum[:16]) + `"`
	return nil
}

// metadataSize is a plausible size of GitLab's metadata.gz for this archive.
func (a *archive) metadataSize() int64 { return 64 + 48*int64(len(a.entries)) }

// entry finds a file entry by its exact name.
func (a *archive) entry(name string) (archiveEntry, bool) {
	for _, e := range a.entries {
		if !e.Dir && e.Path == name {
			return e, true
		}
	}
	return archiveEntry{}, false
}

// children lists the entries under dir ("" = root, else ending in "/"),
// only direct children unless recursive. ok is false when dir does not exist.
func (a *archive) children(dir string, recursive bool) (out []archiveEntry, ok bool) {
	if dir == "" {
		ok = true
	}
	for _, e := range a.entries {
		if e.Path == dir {
			ok = true
			continue
		}
		if !strings.HasPrefix(e.Path, dir) {
			continue
		}
		ok = true
		rest := strings.TrimSuffix(e.Path[len(dir):], "/")
		if !recursive && strings.Contains(rest, "/") {
			continue
		}
		out = append(out, e)
	}
	return out, ok
}

// openEntry opens one entry of the archive for streaming; the caller closes
// both returned closers (entry first).
func (a *archive) openEntry(e archiveEntry) (io.ReadCloser, io.Closer, error) {
	zr, err := zip.OpenReader(a.path)
	if err != nil {
		return nil, nil, err
	}
	if e.index >= len(zr.File) {
		_ = zr.Close()
		return nil, nil, fmt.Errorf("gitlabemu: archive changed under us")
	}
	rc, err := zr.File[e.index].Open()
	if err != nil {
		_ = zr.Close()
		return nil, nil, err
	}
	return rc, zr, nil
}

package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sync"
	"sync/atomic"

	"github.com/sregistry/sregistry/internal/progress"
)

// DefaultChunkSize is the size of one ranged request when FetchOptions.ChunkSize is 0.
const DefaultChunkSize = 16 << 20

// Buffer sizes: every worker owns two buffers (one being filled from the
// network while the hasher may still hold the other), so memory stays at
// 2 × bufSize × connections plus one read-back buffer, whatever the object size.
const (
	maxBufSize   = 1 << 20
	minBufSize   = 256 << 10
	bufBudget    = 8 << 20 // all workers' buffers together
	readBackSize = 1 << 20
)

// Fetch downloads the range of o into a file in opts.Dir, hashing as it writes,
// retrying and resuming. On error (or ctx cancellation) no temp file is left
// behind except a keyed partial file that a later Fetch resumes.
//
// Ranged objects are fetched in ChunkSize pieces by up to Connections workers
// (or, with one connection, as long ranged streams resumed where they were
// cut). SHA-256 and CRC-32 are computed in order by a separate goroutine:
// bytes written at the hash frontier are handed to it straight from the
// download buffer; bytes written ahead of the frontier (other workers'
// chunks, or chunks kept from an earlier run) are read back from the file —
// normally from the page cache — when the frontier reaches them. Objects
// without Range support are streamed from the start and restarted from zero
// when the connection is cut.
func (d *Downloader) Fetch(ctx context.Context, o *Object, opts FetchOptions) (*Result, error) {
	rep := opts.Progress
	if rep == nil {
		rep = progress.Discard()
	}
	length, err := fetchLength(o, opts)
	if err != nil {
		return nil, err
	}
	chunk := opts.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	conns := max(opts.Connections, 1)
	ranged := o.ranges && length >= 0

	want := &fetchState{
		Version: stateVersion, Key: opts.Key, Offset: opts.Offset, Length: length,
		ObjectSize: o.size, ChunkSize: chunk,
	}
	dst, err := d.openDest(opts.Dir, opts.Key, want)
	if err != nil {
		return nil, err
	}

	f := &fetcher{
		d: d, o: o, rep: rep, dst: dst, file: dst.file,
		off: opts.Offset, length: length, chunkSize: chunk,
		sha: sha256.New(), crc: crc32.NewIEEE(),
	}
	if ranged {
		f.initChunks(dst.done)
		if dst.keyed {
			st := *want
			st.Done = dst.done
			f.saver = newStateSaver(dst.statePath, dst.file, st)
		}
	}
	name := opts.Name
	if name == "" {
		name = remoteName(o.remote.URL)
	}
	rep.Begin(name, length, f.restored)

	res, err := f.run(ctx, ranged, conns)
	if err == nil && opts.ExpectedSize >= 0 && res.Size != opts.ExpectedSize {
		err = fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, res.Size, opts.ExpectedSize)
	}
	if err == nil {
		err = f.finish()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		keep := false
		if f.saver != nil {
			if ferr := f.saver.flush(); ferr != nil {
				d.debugf("keeping resume state: %v", ferr)
			}
			keep = f.saver.saved() && !errors.Is(err, ErrSizeMismatch)
		}
		dst.fail(keep)
		rep.End(err)
		return nil, err
	}
	if f.saver != nil {
		f.saver.stop() // the file is complete and fsynced: no state to save
	}
	res.Path = dst.path
	res.Resumed = f.restored > 0
	res.readBack = f.readBack.Load()
	res.release = dst.release
	rep.End(nil)
	return res, nil
}

// fetchLength validates opts against o and returns the byte count to fetch
// (-1 when the object size is unknown and Length < 0).
func fetchLength(o *Object, opts FetchOptions) (int64, error) {
	if opts.Offset < 0 {
		return 0, fmt.Errorf("fetch: negative offset %d", opts.Offset)
	}
	length := opts.Length
	if o.size >= 0 {
		if opts.Offset > o.size {
			return 0, fmt.Errorf("fetch: offset %d beyond object size %d", opts.Offset, o.size)
		}
		if length < 0 {
			length = o.size - opts.Offset
		} else if opts.Offset+length > o.size {
			return 0, fmt.Errorf("fetch: bytes %d+%d beyond object size %d", opts.Offset, length, o.size)
		}
	}
	if opts.ExpectedSize >= 0 && length >= 0 && length != opts.ExpectedSize {
		return 0, fmt.Errorf("%w: object has %d bytes, expected %d", ErrSizeMismatch, length, opts.ExpectedSize)
	}
	return length, nil
}

// remoteName is the last element of u's path, for progress labels.
func remoteName(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if b := path.Base(u.Path); b != "." && b != "/" {
			return b
		}
	}
	return "download"
}

// chunk tracks one ChunkSize piece of the range: bytes [start, end) of the
// file, of which written (from start) are on disk.
type chunk struct {
	start, end int64
	written    int64
}

// fetcher is the state of one Fetch.
type fetcher struct {
	d     *Downloader
	o     *Object
	rep   progress.Reporter
	dst   *dest
	file  *os.File
	saver *stateSaver // nil unless keyed and ranged

	off, length int64 // the object's bytes [off, off+length) go to file offsets [0, length)
	chunkSize   int64
	restored    int64 // bytes kept from an earlier run

	mu       sync.Mutex
	chunks   []chunk
	sentUpTo int64 // bytes before this are hashed or handed to the hasher

	// owned by the hasher goroutine until it returns
	hashCh   chan hashMsg
	sha      hash.Hash
	crc      hash.Hash32
	hashed   int64
	readBack atomic.Int64 // bytes hashed from disk rather than from download buffers
	written  int64        // stream mode: bytes in the file
}

// hashMsg hands bytes at file offset pos to the hasher; it returns buf to
// free when done. reset restarts the hashes (stream restarted from zero);
// eof ends a stream of unknown length.
type hashMsg struct {
	buf   []byte
	pos   int64
	free  chan<- []byte
	reset bool
	eof   bool
}

func (f *fetcher) initChunks(done []int) {
	n := numChunks(f.length, f.chunkSize)
	f.chunks = make([]chunk, n)
	for i := range f.chunks {
		start := int64(i) * f.chunkSize
		f.chunks[i] = chunk{start: start, end: min(start+f.chunkSize, f.length)}
	}
	for _, i := range done {
		c := &f.chunks[i]
		c.written = c.end - c.start
		f.restored += c.written
	}
}

// run downloads everything and returns the sizes and hashes (Path etc. unset).
func (f *fetcher) run(ctx context.Context, ranged bool, conns int) (*Result, error) {
	if f.length == 0 {
		return f.result(0, 0), nil
	}
	if ranged {
		if fi, err := f.file.Stat(); err != nil || fi.Size() != f.length {
			// Parallel writers fill the file out of order: reserve the space
			// (less fragmentation, and a full disk fails now, not at 90%).
			// A single stream writes in order, so a sparse length is enough
			// and avoids touching every block twice.
			alloc := preallocate
			if conns <= 1 {
				alloc = (*os.File).Truncate
			}
			if err := alloc(f.file, f.length); err != nil {
				return nil, permanent(fmt.Errorf("preallocate %d bytes: %w", f.length, err))
			}
		}
		used, err := f.runRanged(ctx, conns)
		if err != nil {
			return nil, err
		}
		return f.result(f.length, used), nil
	}
	if f.length > 0 {
		if err := f.file.Truncate(f.length); err != nil {
			return nil, permanent(fmt.Errorf("preallocate %d bytes: %w", f.length, err))
		}
	}
	if err := f.runStream(ctx); err != nil {
		return nil, err
	}
	return f.result(f.written, 1), nil
}

func (f *fetcher) result(size int64, conns int) *Result {
	return &Result{
		Size:        size,
		SHA256:      hex.EncodeToString(f.sha.Sum(nil)),
		CRC32:       f.crc.Sum32(),
		Connections: conns,
	}
}

// finish checks the file size and fsyncs and closes the file.
func (f *fetcher) finish() error {
	fi, err := f.file.Stat()
	if err != nil {
		return err
	}
	if f.length >= 0 && fi.Size() != f.length {
		return fmt.Errorf("%w: file has %d bytes, expected %d", ErrSizeMismatch, fi.Size(), f.length)
	}
	if err := f.file.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.dst.path, err)
	}
	if err := f.file.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.dst.path, err)
	}
	return nil
}

func bufSizeFor(conns int) int {
	return min(max(bufBudget/(2*conns), minBufSize), maxBufSize)
}

// group runs goroutines that stop together: the first error cancels the rest.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func (g *group) spawn(fn func() error) {
	g.wg.Go(func() {
		if err := fn(); err != nil {
			g.once.Do(func() {
				g.err = err
				g.cancel()
			})
		}
	})
}

func (g *group) wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// task is a run of consecutive chunks [first, last) fetched by one request
// (resumed within the run after a cut).
type task struct{ first, last int }

// runRanged fetches the missing chunks with up to conns workers and returns
// how many workers ran.
func (f *fetcher) runRanged(ctx context.Context, conns int) (int, error) {
	var tasks []task
	for i := range f.chunks {
		c := f.chunks[i]
		if c.written == c.end-c.start {
			continue
		}
		if conns == 1 && len(tasks) > 0 && tasks[len(tasks)-1].last == i {
			tasks[len(tasks)-1].last = i + 1 // one stream over consecutive missing chunks
			continue
		}
		tasks = append(tasks, task{i, i + 1})
	}
	workers := min(conns, len(tasks))
	bufSize := bufSizeFor(workers)
	// Buffers in flight per worker (reading, being written, queued for the
	// hasher): more of them smooth a single stream; the budget caps the total.
	nbuf := min(max(bufBudget/(max(workers, 1)*bufSize), 2), 8)
	f.hashCh = make(chan hashMsg, nbuf*workers+1)

	gctx, cancel := context.WithCancel(ctx)
	g := &group{cancel: cancel}
	g.spawn(func() error { return f.hashRanged(gctx) })
	var next atomic.Int64
	for range workers {
		g.spawn(func() error {
			free := make(chan []byte, nbuf)
			for range nbuf {
				free <- make([]byte, bufSize)
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(tasks) {
					return nil
				}
				if err := f.fetchTask(gctx, tasks[i], free); err != nil {
					return err
				}
			}
		})
	}
	err := g.wait()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, ctxErr
		}
		return 0, err
	}
	if f.hashed != f.length {
		return 0, fmt.Errorf("internal error: hashed %d of %d bytes", f.hashed, f.length)
	}
	return max(workers, 1), nil
}

// taskPos is where task t stands: the first unwritten byte of its first
// incomplete chunk (end of the task when all are complete).
func (f *fetcher) taskPos(t task) (pos, end int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end = f.chunks[t.last-1].end
	for i := t.first; i < t.last; i++ {
		c := f.chunks[i]
		if c.written < c.end-c.start {
			return c.start + c.written, end
		}
	}
	return end, end
}

// fetchTask downloads the chunks of t, resuming with Range after cuts and
// retrying per the policy (attempts reset whenever bytes arrived).
func (f *fetcher) fetchTask(ctx context.Context, t task, free chan []byte) error {
	rt := f.d.newRetrier(f.rep)
	for {
		pos, end := f.taskPos(t)
		if pos >= end {
			return nil
		}
		resp, err := f.o.rangeGet(ctx, f.off+pos, f.off+end-1)
		var n int64
		if err == nil {
			n, err = f.copyRanged(ctx, resp.Body, pos, end, free)
			_ = resp.Body.Close()
			if err == nil {
				continue
			}
		}
		if n > 0 {
			rt.progressed()
		}
		if rerr := rt.next(ctx, err); rerr != nil {
			return fmt.Errorf("fetch bytes %d-%d of %s: %w", f.off+pos, f.off+end-1, f.o.URL(), rerr)
		}
	}
}

// copyRanged copies body (bytes [pos, end) of the file) into the file.
func (f *fetcher) copyRanged(ctx context.Context, body io.Reader, pos, end int64, free chan []byte) (int64, error) {
	start := pos
	for pos < end {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return pos - start, ctx.Err()
		}
		ci := int(pos / f.chunkSize)
		lim := min(int64(len(buf)), f.chunks[ci].end-pos) // chunk bounds never change
		n, rerr := fill(body, buf[:lim])
		if n > 0 {
			if _, werr := f.file.WriteAt(buf[:n], pos); werr != nil {
				free <- buf
				return pos - start, permanent(fmt.Errorf("write %s: %w", f.dst.path, werr))
			}
			if err := f.record(ctx, ci, pos, buf[:n], free); err != nil {
				return pos - start, err
			}
			pos += int64(n)
			f.rep.Add(int64(n))
		} else {
			free <- buf
		}
		if rerr != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return pos - start, ctxErr
			}
			if rerr == io.EOF && pos == end {
				return pos - start, nil // last bytes came with EOF
			}
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF // the body ended before the range did
			}
			return pos - start, stripURL(rerr)
		}
	}
	return pos - start, nil
}

// record accounts data (just written at pos in chunk ci) and hands it to the
// hasher when it sits exactly at the hash frontier; otherwise the hasher
// reads it back from the file later. The decision is made under f.mu, the
// same lock the hasher takes to claim written bytes, so every byte is hashed
// exactly once and in order.
func (f *fetcher) record(ctx context.Context, ci int, pos int64, data []byte, free chan []byte) error {
	n := int64(len(data))
	f.mu.Lock()
	c := &f.chunks[ci]
	c.written += n
	complete := c.written == c.end-c.start
	send := pos == f.sentUpTo
	if send {
		f.sentUpTo += n
	}
	f.mu.Unlock()
	if send {
		select {
		case f.hashCh <- hashMsg{buf: data, pos: pos, free: free}:
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		free <- data[:cap(data)]
	}
	if complete && f.saver != nil {
		if err := f.saver.complete(ci); err != nil {
			return permanent(err)
		}
	}
	return nil
}

// hashRanged hashes the file's bytes in order: from messages for bytes
// written at the frontier, else by reading back bytes already on disk.
func (f *fetcher) hashRanged(ctx context.Context) error {
	var rb []byte
	for f.hashed < f.length {
		var claim int64
		f.mu.Lock()
		if f.hashed == f.sentUpTo {
			c := f.chunks[f.sentUpTo/f.chunkSize]
			if avail := c.start + c.written - f.sentUpTo; avail > 0 {
				claim = avail
				f.sentUpTo += avail
			}
		}
		f.mu.Unlock()
		if claim > 0 {
			if rb == nil {
				rb = make([]byte, readBackSize)
			}
			if err := f.hashFromFile(ctx, rb, f.hashed, claim); err != nil {
				return err
			}
			continue
		}
		select {
		case m := <-f.hashCh:
			if err := f.consume(m); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fetcher) consume(m hashMsg) error {
	if m.pos != f.hashed {
		return fmt.Errorf("internal error: hash frontier at %d, got bytes at %d", f.hashed, m.pos)
	}
	f.sha.Write(m.buf)
	f.crc.Write(m.buf)
	f.hashed += int64(len(m.buf))
	if m.free != nil {
		m.free <- m.buf[:cap(m.buf)]
	}
	return nil
}

// hashFromFile hashes n bytes of the file at pos (already written by a worker
// ahead of the frontier or kept from an earlier run).
func (f *fetcher) hashFromFile(ctx context.Context, rb []byte, pos, n int64) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(int64(len(rb)), n)
		if _, err := f.file.ReadAt(rb[:k], pos); err != nil {
			return permanent(fmt.Errorf("read back %s: %w", f.dst.path, err))
		}
		f.sha.Write(rb[:k])
		f.crc.Write(rb[:k])
		f.hashed += k
		f.readBack.Add(k)
		pos += k
		n -= k
	}
	return nil
}

// runStream fetches an object without Range support: one GET from the
// start, discarding the bytes before off; a cut means starting again at 0.
func (f *fetcher) runStream(ctx context.Context) error {
	f.hashCh = make(chan hashMsg, 3)
	gctx, cancel := context.WithCancel(ctx)
	g := &group{cancel: cancel}
	g.spawn(func() error { return f.hashStream(gctx) })
	g.spawn(func() error {
		err := f.streamWorker(gctx)
		if err == nil {
			select {
			case f.hashCh <- hashMsg{eof: true}:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return err
	})
	if err := g.wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	}
	if f.hashed != f.written {
		return fmt.Errorf("internal error: hashed %d of %d bytes", f.hashed, f.written)
	}
	if f.length < 0 {
		// Unknown size: the file was not preallocated, but trim any longer earlier attempt.
		if err := f.file.Truncate(f.written); err != nil {
			return fmt.Errorf("truncate %s: %w", f.dst.path, err)
		}
	}
	return nil
}

func (f *fetcher) hashStream(ctx context.Context) error {
	for {
		select {
		case m := <-f.hashCh:
			switch {
			case m.eof:
				return nil
			case m.reset:
				f.sha.Reset()
				f.crc.Reset()
				f.hashed = 0
			default:
				if err := f.consume(m); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fetcher) streamWorker(ctx context.Context) error {
	rt := f.d.newRetrier(f.rep)
	free := make(chan []byte, 2)
	free <- make([]byte, maxBufSize)
	free <- make([]byte, maxBufSize)
	var best int64
	for {
		n, err := f.streamOnce(ctx, free)
		if err == nil {
			return nil
		}
		if n > best {
			// Only a cut further in than any before counts as progress: restarts
			// discard the bytes, so a server that always cuts early must not loop forever.
			best = n
			rt.progressed()
		}
		if n > 0 {
			// The server cannot resume: throw away what we have and start over.
			f.rep.Add(-n)
			f.written = 0
			select {
			case f.hashCh <- hashMsg{reset: true}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if rerr := rt.next(ctx, err); rerr != nil {
			return fmt.Errorf("fetch %s: %w", f.o.URL(), rerr)
		}
		f.d.debugf("restarting %s from byte 0 (no Range support)", f.o.URL())
	}
}

// streamOnce makes one full GET; it returns the bytes written to the file.
func (f *fetcher) streamOnce(ctx context.Context, free chan []byte) (int64, error) {
	final := f.o.finalURL()
	resp, err := f.d.do(ctx, final, f.o.remote.Header, "", f.o.redirected(final))
	if err != nil && expired(err) && f.o.redirected(final) {
		resp, err = f.d.do(ctx, f.o.remote.URL, f.o.remote.Header, "", false)
		if err == nil {
			f.o.mu.Lock()
			f.o.final = resp.Request.URL.String()
			f.o.mu.Unlock()
		}
	}
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, permanent(fmt.Errorf("%s: unexpected status %d", redact(resp.Request.URL.String()), resp.StatusCode))
	}
	if f.o.size >= 0 && resp.ContentLength >= 0 && resp.ContentLength != f.o.size {
		return 0, permanent(fmt.Errorf("%s: object size changed from %d to %d", redact(resp.Request.URL.String()), f.o.size, resp.ContentLength))
	}
	if f.off > 0 {
		if _, err := io.CopyN(io.Discard, resp.Body, f.off); err != nil {
			return 0, stripURL(err)
		}
	}
	var pos int64
	for f.length < 0 || pos < f.length {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return pos, ctx.Err()
		}
		lim := int64(len(buf))
		if f.length >= 0 {
			lim = min(lim, f.length-pos)
		}
		n, rerr := fill(resp.Body, buf[:lim])
		if n > 0 {
			if _, werr := f.file.WriteAt(buf[:n], pos); werr != nil {
				return pos, permanent(fmt.Errorf("write %s: %w", f.dst.path, werr))
			}
			select {
			case f.hashCh <- hashMsg{buf: buf[:n], pos: pos, free: free}:
			case <-ctx.Done():
				return pos, ctx.Err()
			}
			pos += int64(n)
			f.written = pos
			f.rep.Add(int64(n))
		} else {
			free <- buf
		}
		if rerr != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return pos, ctxErr
			}
			if rerr == io.EOF && (f.length < 0 || pos == f.length) {
				return pos, nil // unknown size: the body's end is the object's end
			}
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return pos, stripURL(rerr)
		}
	}
	return pos, nil
}

// fill reads into buf until it is full or the reader fails. Unlike
// io.ReadFull it returns the reader's own error (io.EOF for a clean end even
// after a partial fill), so a truncated body (io.ErrUnexpectedEOF from
// net/http) stays distinguishable from a complete one.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

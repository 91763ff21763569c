package transfer

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// do sends one GET for rawURL with hdr and rng ("" for none). Non-2xx
// answers (except 416, returned as is) become *HTTPError with the body read
// and closed. Transport errors are returned with the URL's query removed.
func (d *Downloader) do(ctx context.Context, rawURL string, hdr http.Header, rng string, storage bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, permanent(fmt.Errorf("bad URL %s: %w", redact(rawURL), stripURL(err)))
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		d.debugf("GET %s range=%q: %v", redact(rawURL), rng, stripURL(err))
		return nil, stripURL(err)
	}
	final := resp.Request.URL.String()
	d.debugf("GET %s range=%q -> %d (final %s, %s)", redact(rawURL), rng, resp.StatusCode, redact(final), time.Since(start).Round(time.Millisecond))
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return resp, nil
	}
	return nil, newHTTPError(resp, storage || resp.Request.URL.Host != req.URL.Host, time.Now())
}

// stripURL removes the query from the URL inside a *url.Error: net/http puts
// the full URL (maybe a signed one) into its error text.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redact(ue.URL)
	}
	return err
}

// contentRange is a parsed "Content-Range: bytes first-last/total" (total -1 for "*").
type contentRange struct {
	first, last, total int64
	unsatisfied        bool // "bytes */total"
}

func parseContentRange(v string) (contentRange, error) {
	cr := contentRange{first: -1, last: -1, total: -1}
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return cr, fmt.Errorf("bad Content-Range %q", v)
	}
	span, total, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return cr, fmt.Errorf("bad Content-Range %q", v)
	}
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || n < 0 {
			return cr, fmt.Errorf("bad Content-Range %q", v)
		}
		cr.total = n
	}
	if span == "*" {
		cr.unsatisfied = true
		return cr, nil
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return cr, fmt.Errorf("bad Content-Range %q", v)
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || (cr.total >= 0 && last >= cr.total) {
		return cr, fmt.Errorf("bad Content-Range %q", v)
	}
	cr.first, cr.last = first, last
	return cr, nil
}

// Open resolves r with a GET "Range: bytes=0-0" (closing the body at once) and
// returns the object's size and range support. Errors are *HTTPError for HTTP
// statuses (after retries for 5xx/429). ReadAt calls made through the returned
// Object use ctx; use ReaderAt for another context.
func (d *Downloader) Open(ctx context.Context, r Remote) (*Object, error) {
	rt := d.newRetrier(nil)
	for {
		o, err := d.open(ctx, r)
		if err == nil {
			o.ctx = ctx
			return o, nil
		}
		if rerr := rt.next(ctx, err); rerr != nil {
			return nil, fmt.Errorf("open %s: %w", redact(r.URL), rerr)
		}
	}
}

func (d *Downloader) open(ctx context.Context, r Remote) (*Object, error) {
	resp, err := d.do(ctx, r.URL, r.Header, "bytes=0-0", false)
	if err != nil {
		return nil, err
	}
	// Close at once: for a 200 this drops the connection instead of reading GBs.
	_ = resp.Body.Close()
	o := &Object{d: d, remote: r, size: -1, final: resp.Request.URL.String()}
	o.cache.init(cacheBlocks)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || cr.first != 0 {
			// A 206 we cannot place: do not trust ranges.
			o.size = -1
			return o, nil
		}
		o.size, o.ranges = cr.total, cr.total >= 0
	case http.StatusRequestedRangeNotSatisfiable:
		// An empty object: "bytes=0-0" cannot be satisfied; "Content-Range: bytes */0".
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || cr.total < 0 {
			return nil, permanent(fmt.Errorf("%s answered 416 without a size", redact(o.final)))
		}
		o.size, o.ranges = cr.total, true
	default:
		o.size = resp.ContentLength
	}
	d.debugf("opened %s: size %d, ranges %v, final %s", redact(r.URL), o.size, o.ranges, redact(o.final))
	return o, nil
}

// Size is the object's total size in bytes (-1 if unknown).
func (o *Object) Size() int64 { return o.size }

// RangeSupported reports whether the server answered 206 with a Content-Range.
func (o *Object) RangeSupported() bool { return o.ranges }

// URL returns the object's final URL without its query, for messages.
func (o *Object) URL() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return redact(o.final)
}

// finalURL is the current (possibly signed) storage URL.
func (o *Object) finalURL() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.final
}

// redirected reports whether the final URL is not the remote's own URL, i.e.
// a fresh one can be had by asking Remote.URL again.
func (o *Object) redirected(final string) bool { return final != o.remote.URL }

// expired reports whether err looks like a storage host rejecting an expired
// or revoked signed URL.
func expired(err error) bool {
	switch StatusOf(err) {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
		return true
	}
	return false
}

// rangeGet asks for bytes [first, last] of the object (last < 0: to the end)
// on the final URL. When the storage answers 401/403/400 (expired signature)
// it goes back through Remote.URL once for a fresh redirect. It returns a
// 206 response whose Content-Range starts at first and whose total matches
// the object's size; a 200 becomes ErrRangeIgnored.
func (o *Object) rangeGet(ctx context.Context, first, last int64) (*http.Response, error) {
	rng := fmt.Sprintf("bytes=%d-", first)
	if last >= 0 {
		rng = fmt.Sprintf("bytes=%d-%d", first, last)
	}
	final := o.finalURL()
	resp, err := o.d.do(ctx, final, o.remote.Header, rng, o.redirected(final))
	if err != nil && expired(err) && o.redirected(final) {
		o.d.debugf("storage refused %s (%v); asking %s for a fresh URL", redact(final), StatusOf(err), redact(o.remote.URL))
		resp, err = o.d.do(ctx, o.remote.URL, o.remote.Header, rng, false)
		if err == nil {
			o.mu.Lock()
			o.final = resp.Request.URL.String()
			o.mu.Unlock()
		}
	}
	if err != nil {
		return nil, err
	}
	if err := o.checkPartial(resp, first, last); err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// checkPartial verifies that resp carries exactly the bytes asked for.
func (o *Object) checkPartial(resp *http.Response, first, last int64) error {
	where := redact(resp.Request.URL.String())
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		return fmt.Errorf("%s: %w", where, ErrRangeIgnored)
	case http.StatusRequestedRangeNotSatisfiable:
		return permanent(fmt.Errorf("%s: range %d-%d not satisfiable (object changed?)", where, first, last))
	default:
		return permanent(fmt.Errorf("%s: unexpected status %d for a range request", where, resp.StatusCode))
	}
	cr, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return permanent(fmt.Errorf("%s: %w", where, err))
	}
	wantLast := last
	if last < 0 || (o.size >= 0 && last >= o.size) {
		wantLast = o.size - 1
	}
	switch {
	case cr.first != first:
		return fmt.Errorf("%s: asked for bytes from %d, got %d-%d: %w", where, first, cr.first, cr.last, ErrRangeIgnored)
	case o.size >= 0 && cr.total >= 0 && cr.total != o.size:
		return permanent(fmt.Errorf("%s: object size changed from %d to %d", where, o.size, cr.total))
	case wantLast >= 0 && cr.last != wantLast:
		return permanent(fmt.Errorf("%s: asked for bytes %d-%d, got %d-%d", where, first, wantLast, cr.first, cr.last))
	case resp.ContentLength >= 0 && resp.ContentLength != cr.last-cr.first+1:
		return permanent(fmt.Errorf("%s: Content-Length %d does not match Content-Range %d-%d", where, resp.ContentLength, cr.first, cr.last))
	}
	return nil
}

// Block cache for ReadAt: archive/zip reads the end of the file and then the
// central directory in small pieces; 64 KiB blocks make that a few requests.
const (
	blockSize   = 64 << 10
	cacheBlocks = 16
	// reads of at least this many bytes skip the cache and go straight to the server.
	directRead = 4 * blockSize
)

// ReadAt reads len(p) bytes at off with ranged GETs (small reads are cached in
// 64 KiB blocks), so archive/zip can read a remote central directory. It needs RangeSupported.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	ctx := o.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return o.readAt(ctx, p, off)
}

// ReaderAt returns an io.ReaderAt over o whose requests use ctx.
func (o *Object) ReaderAt(ctx context.Context) io.ReaderAt {
	return readerAtFunc(func(p []byte, off int64) (int, error) { return o.readAt(ctx, p, off) })
}

type readerAtFunc func(p []byte, off int64) (int, error)

func (f readerAtFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }

func (o *Object) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if !o.ranges {
		return 0, ErrNoRange
	}
	if off < 0 {
		return 0, fmt.Errorf("ReadAt: negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := p
	if rem := o.size - off; int64(len(want)) > rem {
		want = want[:rem]
	}
	var err error
	n := 0
	if len(want) >= directRead {
		n, err = o.fetchRange(ctx, want, off)
	} else {
		n, err = o.readCached(ctx, want, off)
	}
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// readCached serves p from cached blocks, fetching the missing span of
// blocks with one request.
func (o *Object) readCached(ctx context.Context, p []byte, off int64) (int, error) {
	b0 := off / blockSize
	b1 := (off + int64(len(p)) - 1) / blockSize
	blocks := make([][]byte, b1-b0+1)
	missFirst, missLast := int64(-1), int64(-1)
	o.mu.Lock()
	for b := b0; b <= b1; b++ {
		if data, ok := o.cache.get(b); ok {
			blocks[b-b0] = data
		} else {
			if missFirst < 0 {
				missFirst = b
			}
			missLast = b
		}
	}
	o.mu.Unlock()
	if missFirst >= 0 {
		start := missFirst * blockSize
		end := min((missLast+1)*blockSize, o.size)
		buf := make([]byte, end-start)
		if _, err := o.fetchRange(ctx, buf, start); err != nil {
			return 0, err
		}
		o.mu.Lock()
		for b := missFirst; b <= missLast; b++ {
			lo := (b - missFirst) * blockSize
			data := buf[lo:min(lo+blockSize, int64(len(buf)))]
			blocks[b-b0] = data
			o.cache.put(b, data)
		}
		o.mu.Unlock()
	}
	n := 0
	for i, data := range blocks {
		bstart := (b0 + int64(i)) * blockSize
		lo := max(off, bstart) - bstart
		n += copy(p[n:], data[lo:])
	}
	return n, nil
}

// fetchRange fills p with the bytes at off, with retries.
func (o *Object) fetchRange(ctx context.Context, p []byte, off int64) (int, error) {
	rt := o.d.newRetrier(nil)
	done := 0
	for {
		n, err := o.fetchOnce(ctx, p[done:], off+int64(done))
		done += n
		if err == nil {
			return done, nil
		}
		if n > 0 {
			rt.progressed()
		}
		if rerr := rt.next(ctx, err); rerr != nil {
			return done, fmt.Errorf("read %s at %d: %w", o.URL(), off, rerr)
		}
	}
}

func (o *Object) fetchOnce(ctx context.Context, p []byte, off int64) (int, error) {
	resp, err := o.rangeGet(ctx, off, off+int64(len(p))-1)
	if err != nil {
		if errors.Is(err, ErrRangeIgnored) {
			err = permanent(err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.ReadFull(resp.Body, p)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return n, ctxErr
		}
		return n, stripURL(err)
	}
	return n, nil
}

// blockCache is a small LRU of fixed-size blocks, guarded by Object.mu.
type blockCache struct {
	max   int
	order *list.List // front = most recent; values are int64 block indexes
	items map[int64]*list.Element
	data  map[int64][]byte
}

func (c *blockCache) init(maxBlocks int) {
	c.max = maxBlocks
	c.order = list.New()
	c.items = make(map[int64]*list.Element)
	c.data = make(map[int64][]byte)
}

func (c *blockCache) get(b int64) ([]byte, bool) {
	el, ok := c.items[b]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return c.data[b], true
}

func (c *blockCache) put(b int64, data []byte) {
	if el, ok := c.items[b]; ok {
		c.order.MoveToFront(el)
		c.data[b] = data
		return
	}
	c.items[b] = c.order.PushFront(b)
	c.data[b] = data
	for c.order.Len() > c.max {
		last := c.order.Back()
		idx := last.Value.(int64)
		c.order.Remove(last)
		delete(c.items, idx)
		delete(c.data, idx)
	}
}

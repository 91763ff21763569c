package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// checkResult verifies the fetched file and its hashes against want.
func checkResult(t *testing.T, res *Result, want []byte) {
	t.Helper()
	got, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file content differs (got %d bytes, want %d)", len(got), len(want))
	}
	sha, crc := sums(want)
	if res.SHA256 != sha || res.CRC32 != crc || res.Size != int64(len(want)) {
		t.Errorf("result sha %s crc %08x size %d, want %s %08x %d", res.SHA256, res.CRC32, res.Size, sha, crc, len(want))
	}
}

// dirEntries lists file names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestFetch(t *testing.T) {
	const size = 5<<20 + 777
	data := testData(size, 42)
	tests := []struct {
		name        string
		conns       int
		chunk       int64
		ignoreRange bool
		expire      bool // the signed URL expires right after Open
		fault       func(r *http.Request, n int) int64
		apiStatus   func(n int) (int, http.Header, string)
		offset      int64
		length      int64
		wantRanges  []string // exact Range headers seen by storage after Open (nil: unchecked)
		wantRetries int
		wantAPI     int64
	}{
		{name: "single stream", conns: 1, length: -1, wantRanges: []string{"bytes=0-5243656"}, wantAPI: 1},
		{
			name: "cut then resume with Range", conns: 1, length: -1,
			fault: func(r *http.Request, n int) int64 {
				if n == 2 {
					return 1_000_000
				}
				return -1
			},
			wantRanges: []string{"bytes=0-5243656", "bytes=1000000-5243656"}, wantRetries: 1, wantAPI: 1,
		},
		{
			name: "expired signature re-resolves through the API", conns: 1, length: -1, expire: true,
			wantRanges: []string{"bytes=0-5243656", "bytes=0-5243656"}, wantAPI: 2,
		},
		{
			name: "no Range: cut restarts from zero", conns: 4, length: -1, ignoreRange: true,
			fault: func(r *http.Request, n int) int64 {
				if n == 2 {
					return 3_000_000
				}
				return -1
			},
			wantRanges: []string{"", ""}, wantRetries: 1, wantAPI: 1,
		},
		{
			name: "500 then success", conns: 1, length: -1,
			apiStatus: func(n int) (int, http.Header, string) {
				if n == 2 {
					return 500, nil, "boom"
				}
				return 0, nil, ""
			},
			expire: true, wantRetries: 1, wantAPI: 3,
		},
		{name: "sub-range", conns: 1, offset: 123_456, length: 2_000_000, wantRanges: []string{"bytes=123456-2123455"}, wantAPI: 1},
		{name: "sub-range without Range support", conns: 1, offset: 123_456, length: 2_000_000, ignoreRange: true, wantRanges: []string{""}, wantAPI: 1},
		{
			name: "parallel with a fault in one chunk", conns: 3, chunk: 1 << 20, length: -1,
			fault: func(r *http.Request, n int) int64 {
				if r.Header.Get("Range") == "bytes=2097152-3145727" && n < 8 {
					return 100_000
				}
				return -1
			},
			wantRetries: 1, wantAPI: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStorage(t, "127.0.0.2", data)
			st.ignoreRange = tc.ignoreRange
			clock := time.Now()
			var clockMu atomic.Int64
			clockMu.Store(clock.UnixNano())
			st.now = func() time.Time { return time.Unix(0, clockMu.Load()) }
			a := newAPI(t, st)
			a.status = tc.apiStatus
			d, _ := testDownloader(t, a.srv.URL)
			var debug strings.Builder
			var debugMu atomic.Bool
			d.Debugf = func(format string, args ...any) {
				for !debugMu.CompareAndSwap(false, true) {
				}
				fmt.Fprintf(&debug, format+"\n", args...)
				debugMu.Store(false)
			}
			ctx := context.Background()
			o, err := d.Open(ctx, Remote{URL: a.url()})
			if err != nil {
				t.Fatal(err)
			}
			st.log.reqs = nil // only count the fetch's requests
			st.fault = tc.fault
			if tc.expire {
				clockMu.Store(clock.Add(11 * time.Minute).UnixNano())
			}
			dir := t.TempDir()
			rec := &recorder{}
			res, err := d.Fetch(ctx, o, FetchOptions{
				Offset: tc.offset, Length: tc.length, Dir: dir, Connections: tc.conns,
				ChunkSize: tc.chunk, Progress: rec, ExpectedSize: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			want := data[tc.offset:]
			if tc.length >= 0 {
				want = data[tc.offset : tc.offset+tc.length]
			}
			checkResult(t, res, want)
			if filepath.Dir(res.Path) != dir || !strings.HasPrefix(filepath.Base(res.Path), ".sregistry-tmp-") {
				t.Errorf("Path = %s", res.Path)
			}
			if tc.wantRanges != nil {
				if got := st.log.ranges(); !slices.Equal(got, tc.wantRanges) {
					t.Errorf("storage ranges = %q, want %q", got, tc.wantRanges)
				}
			}
			if rec.retries != tc.wantRetries {
				t.Errorf("retries = %d, want %d", rec.retries, tc.wantRetries)
			}
			if got := a.calls.Load(); got != tc.wantAPI {
				t.Errorf("API calls = %d, want %d", got, tc.wantAPI)
			}
			if !rec.ended || rec.endErr != nil || rec.added.Load() != int64(len(want)) || rec.total != int64(len(want)) {
				t.Errorf("progress: ended %v err %v added %d total %d", rec.ended, rec.endErr, rec.added.Load(), rec.total)
			}
			st.log.assertNoSecrets(t)
			for _, leak := range []string{"sig=", "Signature", testToken} {
				if strings.Contains(debug.String(), leak) {
					t.Errorf("debug output contains %q:\n%s", leak, debug.String())
				}
			}
			if names := dirEntries(t, dir); len(names) != 1 {
				t.Errorf("dir holds %v", names)
			}
		})
	}
}

// TestFetchParallelLarge: 4 connections over a 64 MiB object whose size is
// not a chunk multiple, with one chunk cut mid-way.
func TestFetchParallelLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	const size = 64<<20 + 12345
	data := testData(size, 5)
	st := newStorage(t, "127.0.0.2", data)
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	st.fault = func(r *http.Request, n int) int64 {
		if strings.HasPrefix(r.Header.Get("Range"), "bytes=20971520-") && cut.CompareAndSwap(false, true) {
			return 1_500_000
		}
		return -1
	}
	res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: t.TempDir(), Connections: 4, ChunkSize: 4 << 20, ExpectedSize: size})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	checkResult(t, res, data)
	if res.Connections != 4 {
		t.Errorf("Connections = %d", res.Connections)
	}
	if !slices.Contains(st.log.ranges(), "bytes=22471520-25165823") {
		t.Errorf("no resume of the cut chunk in %q", st.log.ranges())
	}
	st.log.assertNoSecrets(t)
}

func TestFetchPermanent404(t *testing.T) {
	st := newStorage(t, "127.0.0.2", testData(1000, 1))
	a := newAPI(t, st)
	d, sl := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	// Storage expired and the API now says the artifact is gone.
	st.now = func() time.Time { return time.Now().Add(time.Hour) }
	a.status = func(int) (int, http.Header, string) {
		return 404, http.Header{"Content-Type": {"application/json"}}, `{"message":"404 Not found"}`
	}
	dir := t.TempDir()
	_, err = d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: dir, ExpectedSize: -1})
	if StatusOf(err) != 404 || !strings.Contains(err.Error(), "404 Not found") || !IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if len(sl.get()) != 0 {
		t.Errorf("retried a 404: %v", sl.get())
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("left behind %v", names)
	}
}

func TestFetchSizeMismatch(t *testing.T) {
	st := newStorage(t, "127.0.0.2", testData(1000, 1))
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: t.TempDir(), ExpectedSize: 999})
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("err = %v", err)
	}
}

// TestFetchCancel cancels mid-download: the temp file goes away and the
// error is ctx.Err().
func TestFetchCancel(t *testing.T) {
	for _, ignoreRange := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignoreRange=%v", ignoreRange), func(t *testing.T) {
			data := testData(8<<20, 9)
			st := newStorage(t, "127.0.0.2", data)
			st.ignoreRange = ignoreRange
			a := newAPI(t, st)
			d, _ := testDownloader(t, a.srv.URL)
			o, err := d.Open(context.Background(), Remote{URL: a.url()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := &cancelAfter{limit: 2 << 20, cancel: cancel}
			dir := t.TempDir()
			_, err = d.Fetch(ctx, o, FetchOptions{Length: -1, Dir: dir, Connections: 2, ChunkSize: 1 << 20, Progress: rec, ExpectedSize: -1})
			if !errors.Is(err, context.Canceled) || err != ctx.Err() {
				t.Fatalf("err = %v, want ctx.Err()", err)
			}
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Errorf("left behind %v", names)
			}
		})
	}
}

// cancelAfter cancels once limit bytes were reported.
type cancelAfter struct {
	recorder
	limit  int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Add(n int64) {
	if c.added.Add(n) >= c.limit {
		c.cancel()
	}
}

// TestFetchKeyedResume: the first Fetch is cancelled after some chunks; the
// second reuses them, asks only for the missing ranges, and says Resumed.
func TestFetchKeyedResume(t *testing.T) {
	const chunk = 1 << 20
	data := testData(10*chunk+4321, 11)
	st := newStorage(t, "127.0.0.2", data)
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := "gitlab.example.com/group/proj/jobs/2/artifacts.zip"
	opts := FetchOptions{Length: -1, Dir: dir, Key: key, Connections: 2, ChunkSize: chunk, ExpectedSize: -1}

	ctx, cancel := context.WithCancel(context.Background())
	opts.Progress = &cancelAfter{limit: 5 * chunk, cancel: cancel}
	_, err = d.Fetch(ctx, o, opts)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first fetch: %v", err)
	}
	partial, statePath, lockPath := PartialPaths(dir, key)
	st1, ok := loadState(statePath)
	if !ok || len(st1.Done) == 0 {
		t.Fatalf("no state after cancel (%v)", dirEntries(t, dir))
	}
	if _, err := os.Stat(partial); err != nil {
		t.Fatal(err)
	}

	st.log.reqs = nil
	rec := &recorder{}
	opts.Progress = rec
	res, err := d.Fetch(context.Background(), o, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, data)
	if !res.Resumed || res.Path != partial {
		t.Errorf("Resumed %v Path %s", res.Resumed, res.Path)
	}
	if rec.done != int64(len(st1.Done))*chunk {
		t.Errorf("Begin done = %d, want %d", rec.done, int64(len(st1.Done))*chunk)
	}
	for _, rng := range st.log.ranges() {
		var first, last int64
		if _, err := fmt.Sscanf(rng, "bytes=%d-%d", &first, &last); err != nil {
			t.Fatalf("range %q", rng)
		}
		if slices.Contains(st1.Done, int(first/chunk)) {
			t.Errorf("re-fetched done chunk %d (%s)", first/chunk, rng)
		}
	}
	if got, want := len(st.log.ranges()), 11-len(st1.Done); got != want {
		t.Errorf("%d requests, want %d", got, want)
	}
	final := filepath.Join(dir, "artifacts.zip")
	if err := os.Rename(res.Path, final); err != nil {
		t.Fatal(err)
	}
	res.Release()
	if names := dirEntries(t, dir); !slices.Equal(names, []string{"artifacts.zip"}) {
		t.Errorf("after Release dir holds %v", names)
	}
	_ = lockPath
}

// TestFetchStaleState: a state that does not match (other chunk size) is
// discarded and everything is fetched again.
func TestFetchStaleState(t *testing.T) {
	data := testData(3<<20, 12)
	st := newStorage(t, "127.0.0.2", data)
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	partial, statePath, _ := PartialPaths(dir, "k")
	if err := os.WriteFile(partial, bytes.Repeat([]byte{'x'}, len(data)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeState(statePath, &fetchState{Version: stateVersion, Key: "k", Length: int64(len(data)), ObjectSize: int64(len(data)), ChunkSize: 2 << 20, Done: []int{0, 1}}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: dir, Key: "k", ChunkSize: 1 << 20, ExpectedSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	checkResult(t, res, data)
	if res.Resumed {
		t.Error("resumed from a mismatched state")
	}
}

// TestFetchLockBusy: another process holds the partial file's lock, so the
// fetch uses a private temp file and leaves the other's files alone.
func TestFetchLockBusy(t *testing.T) {
	data := testData(2<<20, 13)
	st := newStorage(t, "127.0.0.2", data)
	a := newAPI(t, st)
	d, _ := testDownloader(t, a.srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: a.url()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	partial, _, lockPath := PartialPaths(dir, "k")
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	// flock locks are per open file description: a second descriptor in the
	// same process conflicts like another process would.
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partial, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: dir, Key: "k", Connections: 2, ChunkSize: 1 << 20, ExpectedSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, data)
	if !strings.HasPrefix(filepath.Base(res.Path), ".sregistry-tmp-") {
		t.Errorf("Path = %s, want a private temp file", res.Path)
	}
	res.Release()
	if b, _ := os.ReadFile(partial); string(b) != "theirs" {
		t.Errorf("the other process's partial file changed: %q", b)
	}
	if _, err := os.Stat(lockPath); err != nil {
		t.Errorf("the other process's lock file is gone: %v", err)
	}
}

// TestFetchUnknownSize streams an object served without Content-Length.
func TestFetchUnknownSize(t *testing.T) {
	data := testData(3<<20+5, 14)
	srv := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(data); i += 100_000 {
			_, _ = w.Write(data[i:min(i+100_000, len(data))])
			w.(http.Flusher).Flush()
		}
	}))
	d, _ := testDownloader(t, srv.URL)
	o, err := d.Open(context.Background(), Remote{URL: srv.URL + "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != -1 || o.RangeSupported() {
		t.Fatalf("size %d ranges %v", o.Size(), o.RangeSupported())
	}
	res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: t.TempDir(), ExpectedSize: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	checkResult(t, res, data)
}

package transfer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// benchServer serves size pattern bytes from a temp file with ServeContent
// (sendfile), like Workhorse serving a local artifact.
func benchServer(b *testing.B, size int64) string {
	b.Helper()
	if u := os.Getenv("SREGISTRY_BENCH_URL"); u != "" {
		return u // e.g. an external file server, to compare with curl
	}
	path := filepath.Join(b.TempDir(), "obj")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, newPattern(size)); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	srv := listenOn(b, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "obj", time.Time{}, f)
	}))
	return srv.URL + "/obj"
}

// BenchmarkFetch reports MB/s for a 256 MiB object with 1 and 4 connections.
// Set SREGISTRY_BENCH_URL to fetch from an external server instead.
func BenchmarkFetch(b *testing.B) {
	const size = 256 << 20
	url := benchServer(b, size)
	d := &Downloader{Client: NewClient(ClientOptions{})}
	o, err := d.Open(context.Background(), Remote{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(o.Size())
			b.ReportAllocs()
			var readBack int64
			for b.Loop() {
				res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: dir, Connections: conns, ExpectedSize: -1})
				if err != nil {
					b.Fatal(err)
				}
				_ = os.Remove(res.Path)
				res.Release()
				readBack += res.readBack
			}
			b.ReportMetric(float64(readBack)/float64(b.N)/(1<<20), "MiB-readback/op")
		})
	}
}

// TestFetchMemory fetches 512 MiB with 1 and 4 connections and checks that
// the heap and the memory obtained from the OS grow by less than 40 MB.
func TestFetchMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("512 MiB")
	}
	const size = 512 << 20
	srv := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "obj", time.Time{}, newPattern(size))
	}))
	d := &Downloader{Client: NewClient(ClientOptions{})}
	o, err := d.Open(context.Background(), Remote{URL: srv.URL + "/obj"})
	if err != nil {
		t.Fatal(err)
	}
	for _, conns := range []int{1, 4} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var peakHeap atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						runtime.ReadMemStats(&ms)
						if ms.HeapInuse > peakHeap.Load() {
							peakHeap.Store(ms.HeapInuse)
						}
					}
				}
			}()
			res, err := d.Fetch(context.Background(), o, FetchOptions{Length: -1, Dir: t.TempDir(), Connections: conns, ChunkSize: 16 << 20, ExpectedSize: size})
			close(stop)
			<-sampled
			if err != nil {
				t.Fatal(err)
			}
			res.Release()
			readBack := res.readBack
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			heapGrowth := int64(peakHeap.Load()) - int64(before.HeapInuse)
			sysGrowth := int64(after.Sys) - int64(before.Sys)
			t.Logf("peak HeapInuse growth %.1f MiB, Sys growth %.1f MiB, TotalAlloc %.1f MiB, read back %.1f MiB",
				float64(heapGrowth)/(1<<20), float64(sysGrowth)/(1<<20), float64(after.TotalAlloc-before.TotalAlloc)/(1<<20),
				float64(readBack)/(1<<20))
			if heapGrowth > 40<<20 || sysGrowth > 40<<20 {
				t.Errorf("memory grew too much: heap %d, sys %d", heapGrowth, sysGrowth)
			}
		})
	}
}

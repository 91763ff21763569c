package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// An object whose size is an exact multiple of the copy buffer, from a
// server that ignores Range, must download in one attempt (a regression test
// for a boundary EOF that made such downloads restart forever).
func TestFetchNoRangeBufferMultiple(t *testing.T) {
	for _, size := range []int{1 << 20, 2 << 20, 1<<20 + 1, 1<<20 - 1} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			body := bytes.Repeat([]byte{0xA5}, size)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(size))
				w.WriteHeader(http.StatusOK)
				w.Write(body)
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			d := &Downloader{Client: srv.Client()}
			o, err := d.Open(ctx, Remote{URL: srv.URL + "/x.sif"})
			if err != nil {
				t.Fatal(err)
			}
			if o.RangeSupported() {
				t.Fatal("range reported for a server that ignores it")
			}
			res, err := d.Fetch(ctx, o, FetchOptions{Length: -1, Dir: t.TempDir(), Connections: 4, ExpectedSize: int64(size)})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			sum := sha256.Sum256(body)
			if res.Size != int64(size) || res.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("size %d sha %s", res.Size, res.SHA256)
			}
		})
	}
}

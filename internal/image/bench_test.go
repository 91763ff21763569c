package image

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apptainer/sif/v2/pkg/sif"
)

const (
	bigObjectSize   = 2 << 30 // 2 GiB sparse data partition
	maxMetadataRead = 2 << 20 // Inspect may read at most this much of it
)

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// make2GiBSIF builds a SIF whose primary partition is a real squashfs without
// inspect-metadata.json (so the squashfs is read) followed by a 2 GiB sparse
// Data partition: the SIF is written small, then the last descriptor and the
// header are patched and the file is extended sparsely.
func make2GiBSIF(tb testing.TB) string {
	tb.Helper()
	root := makeRootfs(tb, rootOpts{big: true})
	sq := mksquashfs(tb, root, "gzip")
	p := filepath.Join(tb.TempDir(), "big.sif")
	writeSIF(tb, p, sq, nil)
	f, err := sif.LoadContainerFromPath(p)
	if err != nil {
		tb.Fatal(err)
	}
	di, err := sif.NewDescriptorInput(sif.DataPartition, io.LimitReader(zeroReader{}, 1),
		sif.OptPartitionMetadata(sif.FsRaw, sif.PartData, "amd64"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.AddObject(di); err != nil {
		tb.Fatal(err)
	}
	last, err := f.GetDescriptor(sif.WithPartitionType(sif.PartData))
	if err != nil {
		tb.Fatal(err)
	}
	descOff, dataOff := f.DescriptorsOffset(), f.DataOffset()
	idx := int64(-1)
	ds, _ := f.GetDescriptors()
	for i, d := range ds {
		if d.ID() == last.ID() {
			idx = int64(i)
		}
	}
	lastOff := last.Offset()
	if err := f.UnloadContainer(); err != nil {
		tb.Fatal(err)
	}
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	var b [8]byte
	put := func(off, v int64) {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		if _, err := fh.WriteAt(b[:], off); err != nil {
			tb.Fatal(err)
		}
	}
	rd := descOff + idx*sifDescriptorSize
	put(rd+25, bigObjectSize)                                    // size
	put(rd+33, bigObjectSize)                                    // size with padding
	put(120, lastOff+bigObjectSize-dataOff)                      // header data size
	if err := fh.Truncate(lastOff + bigObjectSize); err != nil { // sparse
		tb.Fatal(err)
	}
	return p
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func inspectCounted(tb testing.TB, p string) (*Info, int64) {
	fh, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	c := &countingReaderAt{r: fh}
	info, err := inspectReaderAt(c, st.Size())
	if err != nil {
		tb.Fatal(err)
	}
	return info, c.n.Load()
}

// TestInspectLargeReadsMetadataOnly is the benchmark's assertion as a test.
func TestInspectLargeReadsMetadataOnly(t *testing.T) {
	p := make2GiBSIF(t)
	start := time.Now()
	info, n := inspectCounted(t, p)
	elapsed := time.Since(start)
	if info.Size < bigObjectSize || len(info.SIF.Descriptors) != 3 || info.SIF.Descriptors[2].Size != bigObjectSize {
		t.Fatalf("not a 2 GiB SIF: %d bytes, %+v", info.Size, info.SIF.Descriptors)
	}
	if info.Attributes == nil || info.Attributes.Labels["number"] != "42" {
		t.Fatalf("attributes not read from the squashfs: %+v", info.Attributes)
	}
	if n > maxMetadataRead {
		t.Errorf("read %d bytes of a %d-byte image; want metadata only (< %d)", n, info.Size, maxMetadataRead)
	}
	if elapsed > 200*time.Millisecond {
		t.Errorf("Inspect took %s, want < 200ms", elapsed)
	}
	t.Logf("2 GiB SIF: %s, %d bytes read", elapsed, n)
}

func BenchmarkInspect2GiB(b *testing.B) {
	p := make2GiBSIF(b)
	var n int64
	b.ResetTimer()
	for b.Loop() {
		_, n = inspectCounted(b, p)
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "bytes-read/op")
	if n > maxMetadataRead {
		b.Fatalf("read %d bytes; want metadata only (< %d)", n, maxMetadataRead)
	}
	if per := b.Elapsed() / time.Duration(b.N); per > 200*time.Millisecond {
		b.Fatalf("Inspect took %s/op, want < 200ms", per)
	}
}

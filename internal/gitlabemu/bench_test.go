package gitlabemu

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestArchiveBuildThroughput reports how fast a 256 MiB generated artifact is
// materialised and served (skipped with -short). GITLABEMU_BUILD_MIB
// overrides the size, e.g. 2048 to time a 2 GiB artifact.
func TestArchiveBuildThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds a 256 MiB archive")
	}
	size := int64(256 << 20)
	if v, err := strconv.Atoi(os.Getenv("GITLABEMU_BUILD_MIB")); err == nil && v > 0 {
		size = int64(v) << 20
	}
	s := start(t, Options{})
	j := s.AddJob(testProject, Job{Artifacts: []Artifact{{Path: "build/big.sif", Size: size}}})
	begin := time.Now()
	if _, err := s.ArchivePath(j.ID); err != nil {
		t.Fatal(err)
	}
	d := time.Since(begin)
	t.Logf("materialised %d MiB archive in %v (%.0f MB/s)", size>>20, d, float64(size)/d.Seconds()/1e6)
	if d > 30*time.Second {
		t.Errorf("archive build too slow: %v", d)
	}
	u, _ := s.ArchiveURL(j.ID)
	begin = time.Now()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d = time.Since(begin)
	if err != nil || n < size {
		t.Fatalf("served %d bytes: %v", n, err)
	}
	t.Logf("served %d bytes from storage in %v (%.0f MB/s)", n, d, float64(n)/d.Seconds()/1e6)
}

// BenchmarkGeneratedContent measures the pseudo-random content generator.
func BenchmarkGeneratedContent(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(64 << 20)
	for b.Loop() {
		if _, err := io.CopyBuffer(io.Discard, GeneratedContent(1, "x", 64<<20), buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArchiveBuild measures materialising a 64 MiB stored artifact.
func BenchmarkArchiveBuild(b *testing.B) {
	b.SetBytes(64 << 20)
	for b.Loop() {
		s := New(Options{Dir: b.TempDir()})
		s.dir = s.opts.Dir
		j := s.AddJob(testProject, Job{Artifacts: []Artifact{{Path: "big.sif", Size: 64 << 20}}})
		if _, err := s.ArchivePath(j.ID); err != nil {
			b.Fatal(err)
		}
	}
}

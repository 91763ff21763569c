package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzTimeLimit is how long one input may take; the readers are bounded, so
// anything slower is a bug.
const fuzzTimeLimit = 2 * time.Second

// seedFiles returns the fixtures and, when withBusybox, the real image, cut
// to limit bytes. Big seeds make the fuzzer spend its time minimising them.
func seedFiles(f *testing.F, limit int, withBusybox bool) [][]byte {
	var out [][]byte
	var paths []string
	if withBusybox {
		paths = append(paths, busyboxPath)
	}
	for _, fx := range fixtures {
		paths = append(paths, fx.file)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if limit > 0 && len(b) > limit {
			b = b[:limit]
		}
		out = append(out, b)
	}
	return out
}

func badInputs(f *testing.F) [][]byte {
	return [][]byte{
		zipBytes(f), nil, []byte("<!DOCTYPE html><html>"), []byte(`{"message":"404 Not Found"}`),
		{0x1f, 0x8b, 8}, []byte(LaunchLine), []byte(LaunchLine + "hsqs"), extImage(LaunchLine, extHasJournal, 0),
	}
}

func FuzzDetect(f *testing.F) {
	for _, b := range seedFiles(f, 4096, true) {
		f.Add(b)
	}
	for _, b := range badInputs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		format, off, err := Detect(bytes.NewReader(b), int64(len(b)))
		if err != nil && format != FormatUnknown {
			t.Fatalf("error %v with format %s", err, format)
		}
		if err == nil && (format == FormatUnknown || off < 0 || off > int64(len(b))) {
			t.Fatalf("format %s offset %d for %d bytes", format, off, len(b))
		}
	})
}

func FuzzInspectSIF(f *testing.F) {
	for _, b := range seedFiles(f, 64<<10, false) {
		if len(b) > 42 && string(b[32:42]) == sifMagic {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.sif")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		info, err := Inspect(p)
		if d := time.Since(start); d > fuzzTimeLimit {
			t.Fatalf("Inspect took %s", d)
		}
		if err == nil && info == nil {
			t.Fatal("nil info without error")
		}
		if info != nil {
			_ = info.Metrics()
			_, _ = MarshalInspectJSON(info.Attributes)
		}
	})
}

func FuzzSquashfs(f *testing.F) {
	for _, b := range seedFiles(f, 0, false) {
		if bytes.HasPrefix(b, []byte(LaunchLine+"hsqs")) {
			b = b[len(LaunchLine):]
		}
		if bytes.HasPrefix(b, []byte("hsqs")) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		_, _, _ = readSquashAttributes(bytes.NewReader(b), int64(len(b)))
		if s, err := openSquashfs(bytes.NewReader(b), int64(len(b))); err == nil {
			for _, p := range []string{"/singularity", "/loop1", "/dirlink/../opt/test.sh", "/scif/apps"} {
				_, _ = s.readFile(p)
				_, _ = s.readDirNames(p)
			}
		}
		if d := time.Since(start); d > fuzzTimeLimit {
			t.Fatalf("reading took %s", d)
		}
	})
}

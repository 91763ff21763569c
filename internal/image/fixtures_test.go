package image

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Regenerate the small fixtures with:
//
//	go test ./internal/image/ -run TestFixtures -update
//
// They let the fuzz seeds and CI runs without squashfs-tools still cover
// real mksquashfs output. Each is a few KiB.
var update = flag.Bool("update", false, "regenerate testdata fixtures (needs mksquashfs)")

var fixtures = []struct {
	file   string
	format Format
	comp   string
}{
	{"testdata/small-gzip.sqfs", FormatSquashfs, "gzip"},
	{"testdata/small-uncompressed.sqfs", FormatSquashfs, "gzip"},
	{"testdata/small-zstd.simg", FormatSimg, "zstd"},
	{"testdata/small.sif", FormatSIF, "xz"},
}

func TestFixtures(t *testing.T) {
	if *update {
		root := makeRootfs(t, rootOpts{})
		fixed := []string{"-all-time", "0", "-mkfs-time", "0"}
		gz := mksquashfs(t, root, "gzip", fixed...)
		raw := mksquashfs(t, root, "gzip", append(fixed, "-noI", "-noD", "-noF", "-noX")...)
		zs := mksquashfs(t, root, "zstd", fixed...)
		xz := mksquashfs(t, root, "xz", fixed...)
		copyFile(t, gz, fixtures[0].file)
		copyFile(t, raw, fixtures[1].file)
		writeSimg(t, fixtures[2].file, zs)
		writeSIF(t, fixtures[3].file, xz, nil)
	}
	for _, fx := range fixtures {
		info, err := Inspect(fx.file)
		if err != nil {
			t.Fatalf("%s: %v (regenerate with -update)", fx.file, err)
		}
		if info.Format != fx.format || info.Compression != fx.comp {
			t.Errorf("%s: %s/%s", fx.file, info.Format, info.Compression)
		}
		if !reflect.DeepEqual(info.Attributes, wantGenerated()) {
			t.Errorf("%s: attributes %+v", fx.file, info.Attributes)
		}
		if info.Size > 100<<10 {
			t.Errorf("%s is %d bytes; fixtures must stay under 100 KiB", fx.file, info.Size)
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

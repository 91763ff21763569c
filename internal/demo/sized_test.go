package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sregistry/sregistry/internal/image"
)

func TestMakeSizedSIF(t *testing.T) {
	base, err := FindTestSIF(".")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	p := filepath.Join(t.TempDir(), "big.sif")
	const size = 8 << 20
	if err := MakeSizedSIF(base, p, size); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < size-(1<<20) || st.Size() > size+(1<<20) {
		t.Errorf("size %d, want about %d", st.Size(), size)
	}
	info, err := image.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != image.FormatSIF || info.Attributes == nil || info.Attributes.Labels["org.label-schema.usage.singularity.version"] != "3.8.1" {
		t.Errorf("inspect: %+v", info)
	}
}

func TestMakeLegacySimg(t *testing.T) {
	base, err := FindTestSIF(".")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	p := filepath.Join(t.TempDir(), "legacy.simg")
	if err := MakeLegacySimg(base, p); err != nil {
		t.Fatal(err)
	}
	info, err := image.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != image.FormatSimg || info.Attributes == nil || info.Attributes.Runscript == "" {
		t.Errorf("inspect: %+v", info)
	}
}

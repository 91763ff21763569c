package image

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	ssq "github.com/sylabs/squashfs"
)

// TestSquashfsMatchesSylabs cross-checks the bounded reader against
// github.com/sylabs/squashfs on well-formed images, and both against the
// files on disk.
func TestSquashfsMatchesSylabs(t *testing.T) {
	root := makeRootfs(t, rootOpts{big: true})
	for _, comp := range []string{"gzip", "xz", "zstd"} {
		sq := mksquashfs(t, root, comp)
		f, err := os.Open(sq)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		mine, err := openSquashfs(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := ssq.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		err = fs.WalkDir(theirs, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			want, err := fs.ReadFile(theirs, p)
			if err != nil {
				return err
			}
			disk, err := os.ReadFile(filepath.Join(root, p))
			if err != nil {
				return err
			}
			got, err := mine.readFile("/" + p)
			if err != nil || !bytes.Equal(got, disk) {
				t.Errorf("%s %s: %d bytes, %v; the file has %d bytes", comp, p, len(got), err, len(disk))
			}
			if !bytes.Equal(want, disk) {
				// sylabs/squashfs v1.0.6 drops sparse (all-zero) blocks.
				t.Logf("%s %s: sylabs/squashfs read %d bytes, the file has %d", comp, p, len(want), len(disk))
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if checked < 10 {
			t.Errorf("only %d files compared", checked)
		}
		f.Close()
	}
}

package transfer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSweepStale(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldTmp := mk(".sregistry-tmp-123", 2*time.Hour)
	newTmp := mk(".sregistry-tmp-456", time.Minute)
	oldInflate := mk(".sregistry-inflate-1.tmp", 3*time.Hour)
	oldStorageTmp := mk(".latest.sregistry-tmp-9", 2*time.Hour)
	final := mk("latest@abc.sif", 30*24*time.Hour)
	oldPartial := mk(".sregistry-aaaa.partial", 8*24*time.Hour)
	oldState := mk(".sregistry-aaaa.state", 8*24*time.Hour)
	lockedPartial := mk(".sregistry-bbbb.partial", 8*24*time.Hour)
	recentPartial := mk(".sregistry-cccc.partial", time.Hour)
	held, err := tryLock(filepath.Join(dir, ".sregistry-bbbb.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(held, filepath.Join(dir, ".sregistry-bbbb.lock"))

	removed := SweepStale(dir, now)
	for _, p := range []string{oldTmp, oldInflate, oldStorageTmp, oldPartial, oldState} {
		if !slices.Contains(removed, p) {
			t.Errorf("%s not swept", filepath.Base(p))
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", filepath.Base(p))
		}
	}
	for _, p := range []string{newTmp, final, lockedPartial, recentPartial} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sweep ages: a temp file nobody has written to for StaleTemp belongs to a
// process that died (active downloads write continuously); a resumable
// partial untouched for StalePartial is unlikely to be resumed.
const (
	StaleTemp    = time.Hour
	StalePartial = 7 * 24 * time.Hour
)

// SweepStale removes what killed processes left in dir: private temp files
// (".sregistry-tmp-*", ".sregistry-inflate-*", and storage's
// ".<tag>.sregistry-tmp-*") not modified for StaleTemp, and keyed partial
// downloads (".sregistry-<key>.partial" with its .state) not modified for
// StalePartial and not locked by a running download. It returns the paths
// removed; errors are ignored (the sweep is housekeeping, never a reason to
// fail a pull).
func SweepStale(dir string, now time.Time) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		age := now.Sub(info.ModTime())
		p := filepath.Join(dir, name)
		switch {
		case strings.Contains(name, ".sregistry-tmp-") || strings.HasPrefix(name, ".sregistry-inflate-"):
			if age > StaleTemp && os.Remove(p) == nil {
				removed = append(removed, p)
			}
		case strings.HasPrefix(name, ".sregistry-") && strings.HasSuffix(name, ".partial"):
			if age <= StalePartial {
				continue
			}
			base := strings.TrimSuffix(p, ".partial")
			lock, err := tryLock(base + ".lock")
			if err != nil {
				continue // a download is using it
			}
			for _, q := range []string{p, base + ".state"} {
				if os.Remove(q) == nil {
					removed = append(removed, q)
				}
			}
			unlock(lock, base+".lock")
		}
	}
	return removed
}

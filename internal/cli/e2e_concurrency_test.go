package cli_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/gitlabemu"
)

// concurrentPulls is how many sregistry processes run at once.
const concurrentPulls = 16

type procResult struct {
	code           int
	stdout, stderr string
}

// runConcurrently starts all commands at once (after a common barrier) and
// waits for them.
func (e *e2eEnv) runConcurrently(t *testing.T, home string, argsFor func(i int) []string, n int) []procResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := make([]procResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			cmd, out, errb := e.command(ctx, home, argsFor(i)...)
			<-start
			err := cmd.Run()
			code := -1
			if cmd.ProcessState != nil {
				code = cmd.ProcessState.ExitCode()
			} else if err != nil {
				errb.WriteString(err.Error())
			}
			res[i] = procResult{code, out.String(), errb.String()}
		})
	}
	close(start)
	wg.Wait()
	return res
}

func checkNoBusy(t *testing.T, res []procResult) {
	t.Helper()
	for i, r := range res {
		for _, bad := range []string{"database is locked", "SQLITE_BUSY", "DATA RACE"} {
			if strings.Contains(r.stderr, bad) {
				t.Errorf("process %d: stderr contains %q:\n%s", i, bad, r.stderr)
			}
		}
	}
}

// checkSingleImage asserts the storage holds exactly the one image (right
// sha256), the catalog one row for it, and no transient files.
func checkSingleImage(t *testing.T, home, final, sum string) {
	t.Helper()
	if transient := checkConsistent(t, home); len(transient) > 0 {
		t.Errorf("left behind: %v", transient)
	}
	finals, _, _ := storageState(t, storageRoot(home))
	if len(finals) != 1 || finals[0] != final {
		t.Errorf("final files = %v, want [%s]", finals, final)
	}
	if got := fileSHA256(t, final); got != sum {
		t.Errorf("sha256 %s, want %s", got, sum)
	}
	rows := catalogRows(t, home)
	if len(rows) != 1 || rows[0].Image != final || rows[0].Version != sum {
		t.Errorf("catalog rows = %+v, want one for %s", rows, final)
	}
}

// TestConcurrentPullsSameImage runs 16 `pull --force` processes of one image
// into one HOME: all succeed, without SQLite busy errors, leaving one file,
// one row and no temp, partial or lock files.
func TestConcurrentPullsSameImage(t *testing.T) {
	e := newE2E(t, gitlabemu.Options{})
	data, sum := imageData(8<<20, 7)
	job := e.emu.AddJob("conc/proj", gitlabemu.Job{Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: data}}})
	if _, err := e.emu.ArchivePath(job.ID); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(storageRoot(e.home), "conc", "proj", "latest@"+sum+".sif")
	ref := fmt.Sprintf("%d,conc/proj", job.ID)

	begin := time.Now()
	res := e.runConcurrently(t, e.home, func(int) []string { return []string{"pull", "--force", ref} }, concurrentPulls)
	t.Logf("%d concurrent pull --force: %v", concurrentPulls, time.Since(begin).Round(time.Millisecond))
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("process %d: exit %d:\n%s", i, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "Success! "+final) {
			t.Errorf("process %d: stdout %q", i, r.stdout)
		}
	}
	checkNoBusy(t, res)
	checkSingleImage(t, e.home, final, sum)
}

// TestConcurrentPullsSameImageNoForce: without --force, late starters may
// answer "Image exists!" (exit 1); nothing else may fail and the end state is
// one consistent image.
func TestConcurrentPullsSameImageNoForce(t *testing.T) {
	e := newE2E(t, gitlabemu.Options{})
	data, sum := imageData(8<<20, 8)
	job := e.emu.AddJob("conc/proj", gitlabemu.Job{Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: data}}})
	if _, err := e.emu.ArchivePath(job.ID); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(storageRoot(e.home), "conc", "proj", "latest@"+sum+".sif")
	ref := fmt.Sprintf("%d,conc/proj", job.ID)

	res := e.runConcurrently(t, e.home, func(int) []string { return []string{"pull", ref} }, concurrentPulls)
	ok, exists := 0, 0
	for i, r := range res {
		switch {
		case r.code == 0:
			ok++
		case r.code == 1 && strings.Contains(r.stderr, "Image exists!"):
			exists++
		default:
			t.Errorf("process %d: exit %d:\n%s", i, r.code, r.stderr)
		}
	}
	t.Logf("%d succeeded, %d answered Image exists!", ok, exists)
	if ok == 0 {
		t.Errorf("no pull succeeded")
	}
	checkNoBusy(t, res)
	checkSingleImage(t, e.home, final, sum)
}

// TestConcurrentPullsDifferentImages runs 16 pulls of 16 jobs (one tag each)
// into one storage at once: 16 rows, 16 files, each with the right sha256.
func TestConcurrentPullsDifferentImages(t *testing.T) {
	e := newE2E(t, gitlabemu.Options{})
	type img struct {
		ref, final, sum string
	}
	imgs := make([]img, concurrentPulls)
	for i := range imgs {
		tag := fmt.Sprintf("t%d", i)
		data, sum := imageData(4<<20, uint64(100+i))
		job := e.emu.AddJob("conc/many", gitlabemu.Job{Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity." + tag + ".sif", Data: data}}})
		if _, err := e.emu.ArchivePath(job.ID); err != nil {
			t.Fatal(err)
		}
		imgs[i] = img{
			ref:   fmt.Sprintf("%d,conc/many:%s", job.ID, tag),
			final: filepath.Join(storageRoot(e.home), "conc", "many", tag+"@"+sum+".sif"),
			sum:   sum,
		}
	}
	begin := time.Now()
	res := e.runConcurrently(t, e.home, func(i int) []string { return []string{"pull", imgs[i].ref} }, concurrentPulls)
	t.Logf("%d concurrent pulls of different images: %v", concurrentPulls, time.Since(begin).Round(time.Millisecond))
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("process %d: exit %d:\n%s", i, r.code, r.stderr)
		}
	}
	checkNoBusy(t, res)
	if transient := checkConsistent(t, e.home); len(transient) > 0 {
		t.Errorf("left behind: %v", transient)
	}
	finals, _, _ := storageState(t, storageRoot(e.home))
	if len(finals) != concurrentPulls {
		t.Errorf("%d final files, want %d: %v", len(finals), concurrentPulls, finals)
	}
	rows := catalogRows(t, e.home)
	if len(rows) != concurrentPulls {
		t.Errorf("%d catalog rows, want %d", len(rows), concurrentPulls)
	}
	byImage := map[string]string{}
	for _, r := range rows {
		byImage[r.Image] = r.Version
	}
	for _, im := range imgs {
		if byImage[im.final] != im.sum {
			t.Errorf("no row for %s with version %s", im.final, im.sum)
		}
		if got := fileSHA256(t, im.final); got != im.sum {
			t.Errorf("%s: sha256 %s, want %s", im.final, got, im.sum)
		}
	}
}

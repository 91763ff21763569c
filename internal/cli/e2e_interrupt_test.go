package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/gitlabemu"
)

// TestPullInterruptResumes sends Ctrl-C (SIGINT) to a pull in progress: it
// must exit 1 saying it was interrupted, leave no final file and no catalog
// row, keep the completed chunks for resume, and the next pull must fetch
// only what is missing.
func TestPullInterruptResumes(t *testing.T) {
	const size = 64 << 20 // 4 chunks of 16 MiB
	e := newE2E(t, gitlabemu.Options{})
	data, sum := imageData(size, 7)
	job := e.emu.AddJob("intr/proj", gitlabemu.Job{Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: data}}})
	data = nil
	off := entryOffset(t, e.emu, job.ID, "build/Singularity.sif")
	e.emu.SetThrottle(16 << 20) // 16 MiB/s per connection: one chunk a second
	ref := fmt.Sprintf("%d,intr/proj", job.ID)
	final := filepath.Join(storageRoot(e.home), "intr", "proj", "latest@"+sum+".sif")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, _, stderr := e.command(ctx, e.home, "pull", "--connections", "2", ref)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once a worker asks for the third chunk: it does so only after
	// finishing one of the first two, so there is something to resume.
	waitFor(t, 30*time.Second, func() bool {
		for _, r := range e.emu.Requests() {
			var from int64
			if r.Listener != "storage" {
				continue
			}
			if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &from); err == nil && (from == off+32<<20 || from == off+48<<20) {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("interrupted pull exited %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "ERROR pull interrupted") {
		t.Errorf("stderr does not say the pull was interrupted:\n%s", stderr)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Errorf("final file exists after an interrupted pull (%v)", err)
	}
	if rows := catalogRows(t, e.home); len(rows) != 0 {
		t.Errorf("%d catalog rows after an interrupted pull", len(rows))
	}
	_, transient, other := storageState(t, storageRoot(e.home))
	if len(other) > 0 {
		t.Errorf("unexpected files after interrupt: %v", other)
	}
	if len(transient) == 0 {
		t.Errorf("no resumable partial kept after the interrupt")
	}

	e.emu.ResetRequests()
	e.emu.SetThrottle(0)
	code, _, errOut := e.run(e.home, "pull", "--connections", "2", ref)
	if code != 0 {
		t.Fatalf("pull after interrupt: exit %d\n%s", code, errOut)
	}
	if got := fileSHA256(t, final); got != sum {
		t.Fatalf("sha256 after resume = %s, want %s", got, sum)
	}
	fetched, _ := rangeBytes(e.emu.Requests(), off, off+size)
	t.Logf("resumed pull fetched %d of %d MiB", fetched>>20, size>>20)
	if fetched >= size {
		t.Errorf("the pull after the interrupt fetched %d bytes: nothing was resumed", fetched)
	}
	if _, transient, _ := storageState(t, storageRoot(e.home)); len(transient) > 0 {
		t.Errorf("transient files left after a successful pull: %v", transient)
	}
	if rows := catalogRows(t, e.home); len(rows) != 1 {
		t.Errorf("%d catalog rows, want 1", len(rows))
	}
}

// waitFor polls cond every 10 ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

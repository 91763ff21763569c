package cli_test

// End-to-end tests that run the real sregistry command as subprocesses (the
// test binary re-executed through a symlink named "sregistry", which
// testscript.Main in TestMain dispatches to cli.Main) against an in-process
// GitLab emulator. This file holds the shared helpers and the crash-safety
// test; e2e_concurrency_test.go and e2e_scale_test.go use the helpers.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/gitlabemu"
)

const e2eToken = "glpat-e2e-0123456789abcdef"

// sregistryExe returns the path of a symlink named "sregistry" to the test
// binary; executing it runs cli.Main (see TestMain).
func sregistryExe(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "sregistry")
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// e2eEnv is one emulator plus the environment of sregistry subprocesses.
type e2eEnv struct {
	t    testing.TB
	emu  *gitlabemu.Server
	exe  string
	home string
}

func newE2E(t testing.TB, o gitlabemu.Options) *e2eEnv {
	t.Helper()
	o.Dir = t.TempDir()
	emu := gitlabemu.New(o)
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	emu.AddToken(e2eToken, gitlabemu.PersonalToken, false)
	home := t.TempDir()
	return &e2eEnv{t: t, emu: emu, exe: sregistryExe(t), home: home}
}

// environ is the subprocess environment: the test's own minus any
// SREGISTRY_*/SINGULARITY_* settings, plus HOME and the emulator.
func (e *e2eEnv) environ(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SREGISTRY_") || strings.HasPrefix(kv, "SINGULARITY_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "SREGISTRY_GITLAB_BASE="+e.emu.URL(), "SREGISTRY_GITLAB_TOKEN="+e2eToken)
}

// command returns an unstarted sregistry subprocess in home.
func (e *e2eEnv) command(ctx context.Context, home string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, e.exe, args...)
	cmd.Env = e.environ(home)
	cmd.Dir = home
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

// run runs sregistry to completion and returns its exit code and output.
func (e *e2eEnv) run(home string, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, out, errb := e.command(ctx, home, args...)
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			e.t.Fatalf("run sregistry %v: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// imageData returns size bytes that sregistry accepts as an image (an ext3
// superblock — journal, no ext4-only features — in the first 4 KiB, then
// pseudo-random bytes seeded by seed), and their sha256.
func imageData(size int64, seed uint64) ([]byte, string) {
	if size < 4096 {
		size = 4096
	}
	b := make([]byte, size)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	r := rand.NewChaCha8(s)
	_, _ = r.Read(b[4096:])
	binary.LittleEndian.PutUint16(b[1080:], 0xEF53)   // ext magic
	binary.LittleEndian.PutUint32(b[1024+0x5C:], 0x4) // has_journal
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func storageRoot(home string) string { return filepath.Join(home, ".singularity", "shub") }
func catalogPath(home string) string { return filepath.Join(home, ".singularity", "sregistry.db") }

var finalName = regexp.MustCompile(`^(.+)@([0-9a-f]{64})\.sif$`)

// isTransient reports names of files a pull keeps only while it runs (or
// leaves for resuming): keyed partial/state/lock files and temp files.
func isTransient(name string) bool {
	return strings.HasPrefix(name, ".sregistry-") || strings.Contains(name, ".sregistry-tmp-")
}

// storageState lists final image files and transient files under root.
func storageState(t testing.TB, root string) (finals, transient, other []string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		switch name := d.Name(); {
		case finalName.MatchString(name):
			finals = append(finals, p)
		case isTransient(name):
			transient = append(transient, p)
		default:
			other = append(other, p)
		}
		return nil
	})
	return finals, transient, other
}

// catalogRows lists the catalog (none when it does not exist yet).
func catalogRows(t testing.TB, home string) []catalog.Container {
	t.Helper()
	if _, err := os.Stat(catalogPath(home)); err != nil {
		return nil
	}
	cat, err := catalog.Open(context.Background(), catalogPath(home))
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	defer cat.Close()
	rows, err := cat.List(context.Background())
	if err != nil {
		t.Fatalf("list catalog: %v", err)
	}
	return rows
}

// checkConsistent asserts the crash-safety invariants: every row points to an
// existing file whose sha256 is the row's version; every final-named file
// hashes to the sha in its name; nothing else but transient files exists.
// It returns the transient files found.
func checkConsistent(t testing.TB, home string) []string {
	t.Helper()
	for _, r := range catalogRows(t, home) {
		if _, err := os.Stat(r.Image); err != nil {
			t.Errorf("row %s points to a missing file %s", r.URI, r.Image)
			continue
		}
		if got := fileSHA256(t, r.Image); got != r.Version {
			t.Errorf("row %s: file %s has sha256 %s, version says %s", r.URI, r.Image, got, r.Version)
		}
	}
	finals, transient, other := storageState(t, storageRoot(home))
	for _, p := range finals {
		want := finalName.FindStringSubmatch(filepath.Base(p))[2]
		if got := fileSHA256(t, p); got != want {
			t.Errorf("final file %s has sha256 %s", p, got)
		}
	}
	if len(other) > 0 {
		t.Errorf("unexpected files in storage: %v", other)
	}
	return transient
}

// rangeBytes sums the lengths of ranged storage requests that start inside
// [off, end) (the image's bytes, not the zip directory reads).
func rangeBytes(reqs []gitlabemu.Request, off, end int64) (total int64, n int) {
	for _, r := range reqs {
		if r.Listener != gitlabemu.ListenerStorage {
			continue
		}
		var a, b int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err != nil || a < off || b >= end {
			continue
		}
		total += b - a + 1
		n++
	}
	return total, n
}

// entryOffset is the offset of the named entry's data inside the job's zip.
func entryOffset(t testing.TB, emu *gitlabemu.Server, jobID int64, name string) int64 {
	t.Helper()
	p, err := emu.ArchivePath(jobID)
	if err != nil {
		t.Fatal(err)
	}
	return zipDataOffset(t, p, name)
}

// zipDataOffset opens the zip at p and returns the data offset of entry name.
func zipDataOffset(t testing.TB, p, name string) int64 {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == name {
			off, err := f.DataOffset()
			if err != nil {
				t.Fatal(err)
			}
			return off
		}
	}
	t.Fatalf("%s not in %s", name, p)
	return 0
}

// TestPullCrashSafety SIGKILLs `sregistry pull` at random moments and checks
// after each kill that the catalog and storage are consistent, then that a
// final run completes (resuming when a resume state was saved) and leaves
// exactly one verified image and no partial, state, lock or temp files.
func TestPullCrashSafety(t *testing.T) {
	// 128 MiB = 8 chunks of 16 MiB: the resume state is first saved after 4
	// completed chunks, so SIGKILL (no flush) can leave resumable state.
	size := int64(128 << 20)
	kills := 6
	if testing.Short() {
		size, kills = 64<<20, 4
	}
	const conns = 4
	rate := size / conns // per connection: a full pull takes ~1 s
	e := newE2E(t, gitlabemu.Options{})
	data, sum := imageData(size, 42)
	job := e.emu.AddJob("crash/proj", gitlabemu.Job{Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: data}}})
	data = nil
	off := entryOffset(t, e.emu, job.ID, "build/Singularity.sif")
	e.emu.SetThrottle(rate)
	ref := fmt.Sprintf("%d,crash/proj", job.ID)
	args := []string{"pull", "--force", "--connections", strconv.Itoa(conns), ref}
	final := filepath.Join(storageRoot(e.home), "crash", "proj", "latest@"+sum+".sif")

	// Baseline: one full pull in another HOME gives the duration and byte count.
	base := t.TempDir()
	e.emu.ResetRequests()
	begin := time.Now()
	if code, _, stderr := e.run(base, args...); code != 0 {
		t.Fatalf("baseline pull: exit %d: %s", code, stderr)
	}
	full := time.Since(begin)
	fullBytes, _ := rangeBytes(e.emu.Requests(), off, off+size)
	t.Logf("baseline pull of %d MiB: %v, %d image bytes requested", size>>20, full.Round(time.Millisecond), fullBytes)
	if fullBytes < size {
		t.Fatalf("baseline requested %d bytes < %d", fullBytes, size)
	}

	rng := rand.New(rand.NewPCG(2026, 7))
	resumed := 0
	killAt := func(delay time.Duration, until func() bool) (killed bool, requested int64) {
		e.emu.ResetRequests()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd, _, errb := e.command(ctx, e.home, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var timer <-chan time.Time
		if until == nil {
			timer = time.After(delay)
		} else {
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			fire := make(chan time.Time, 1)
			go func() {
				for range tick.C {
					if until() {
						fire <- time.Now()
						return
					}
					if ctx.Err() != nil {
						return
					}
				}
			}()
			timer = fire
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("pull ended before the kill: %v: %s", err, errb)
			}
		case <-timer:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed = !cmd.ProcessState.Success()
		}
		requested, _ = rangeBytes(e.emu.Requests(), off, off+size)
		if !killed && requested < fullBytes {
			resumed++ // completed while fetching only part of the image
		}
		return killed, requested
	}

	for i := range kills {
		d := time.Duration(rng.Int64N(int64(full)))
		killed, req := killAt(d, nil)
		transient := checkConsistent(t, e.home)
		t.Logf("kill %d at %v: killed=%v, %d MiB requested, transient files %d", i+1, d.Round(time.Millisecond), killed, req>>20, len(transient))
	}

	// A deliberate kill right after the resume state is written: the next
	// run must resume.
	stateSaved := func() bool {
		m, _ := filepath.Glob(filepath.Join(storageRoot(e.home), "crash", "proj", ".sregistry-*.state"))
		return len(m) > 0
	}
	if !stateSaved() {
		killed, _ := killAt(0, stateSaved)
		t.Logf("kill on first saved state: killed=%v", killed)
		checkConsistent(t, e.home)
	}
	hadState := stateSaved()

	e.emu.ResetRequests()
	code, stdout, stderr := e.run(e.home, args...)
	if code != 0 {
		t.Fatalf("final pull: exit %d\n%s\n%s", code, stdout, stderr)
	}
	last, _ := rangeBytes(e.emu.Requests(), off, off+size)
	if last < fullBytes {
		resumed++
	}
	t.Logf("final pull requested %d of %d MiB (state before it: %v); runs that resumed: %d", last>>20, fullBytes>>20, hadState, resumed)
	if transient := checkConsistent(t, e.home); len(transient) > 0 {
		t.Errorf("left behind: %v", transient)
	}
	if got := fileSHA256(t, final); got != sum {
		t.Fatalf("image sha256 %s, want %s", got, sum)
	}
	rows := catalogRows(t, e.home)
	if len(rows) != 1 || rows[0].Image != final || rows[0].Version != sum {
		t.Fatalf("catalog rows = %+v, want one for %s", rows, final)
	}
	if hadState && last >= fullBytes {
		t.Errorf("a resume state existed but the final pull fetched everything again (%d bytes)", last)
	}
	if !testing.Short() && resumed == 0 {
		t.Errorf("no run resumed")
	}
	if strings.Contains(stderr, "DATA RACE") {
		t.Errorf("race in subprocess: %s", stderr)
	}
}

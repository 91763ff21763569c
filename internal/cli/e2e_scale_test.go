package cli_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sregistry/sregistry/internal/cli"
	"github.com/sregistry/sregistry/internal/config"
	"github.com/sregistry/sregistry/internal/gitlabemu"
	"github.com/sregistry/sregistry/internal/iostreams"
)

// BenchmarkPull64MiB measures the whole in-process pull path (cli.Run: job
// lookup, zip directory, 4 ranged connections, hashing, verification, rename,
// catalog) of a 64 MiB stored artifact from the emulator over loopback, with a
// fresh Factory and HOME per iteration. Run with e.g.
//
//	go test ./internal/cli -run '^$' -bench Pull64MiB -benchtime 5x
func BenchmarkPull64MiB(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("connections=%d", conns), func(b *testing.B) {
			benchmarkPull(b, 64<<20, conns)
		})
	}
}

func benchmarkPull(b *testing.B, size int64, conns int) {
	e := newE2E(b, gitlabemu.Options{})
	data, sum := imageData(size, 64)
	job := e.emu.AddJob("bench/proj", gitlabemu.Job{Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: data}}})
	if _, err := e.emu.ArchivePath(job.ID); err != nil {
		b.Fatal(err)
	}
	ref := fmt.Sprintf("%d,bench/proj", job.ID)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		home := b.TempDir()
		ios, _, out, errOut := iostreams.Test()
		f := cli.NewFactory(ios, config.MapEnv(map[string]string{
			"HOME":                   home,
			"SREGISTRY_GITLAB_BASE":  e.emu.URL(),
			"SREGISTRY_GITLAB_TOKEN": e2eToken,
		}), home)
		b.StartTimer()
		code := cli.Run(context.Background(), f, []string{"pull", "--connections", fmt.Sprint(conns), ref})
		b.StopTimer()
		want := filepath.Join(storageRoot(home), "bench", "proj", "latest@"+sum+".sif")
		if code != 0 || !strings.Contains(out.String(), want) {
			b.Fatalf("pull: exit %d: %s%s", code, out, errOut)
		}
		b.StartTimer()
	}
}

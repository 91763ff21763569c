package image

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apptainer/sif/v2/pkg/sif"
)

// busyboxPath is the real Singularity 3.8.1 image, in the shared folder next
// to the repository root.
const busyboxPath = "../../../shared/testdata/busybox_amd64.sif"

func needBusybox(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(busyboxPath); err != nil {
		skipOrFail(t, "real image %s not available: %v", busyboxPath, err)
	}
	return busyboxPath
}

func needMksquashfs(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mksquashfs")
	if err != nil {
		skipOrFail(t, "mksquashfs (squashfs-tools) is not installed; install it to run this test (scripts/test.sh does as root)")
	}
	return p
}

// Contents of the generated root file system.
const (
	tLabels      = "{\n\t\"org.label-schema.usage.singularity.version\": \"3.8.1\",\n\t\"MAINTAINER\": \"Jane <jane@example.org>\",\n\t\"number\": 42\n}\n"
	tRunscript   = "#!/bin/sh\nexec echo hello \"$@\"\n"
	tStartscript = "#!/bin/sh\necho start\n"
	tTest        = "#!/bin/sh\ntest -x /bin/sh\n"
	tHelp        = "Usage: run me with arguments\n"
	tDeffile     = "Bootstrap: docker\nFrom: alpine:3.20\n\n%runscript\n    echo hello\n"
	tEnv90       = "#!/bin/sh\n# Custom environment shell code should follow\nexport FOO=bar\n"
	tEnvDocker   = "#!/bin/sh\nexport PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n"
	tAppRun      = "#!/bin/sh\necho foo app\n"
)

type rootOpts struct {
	big bool // add multi-block, sparse and larger files
}

// makeRootfs writes a small Singularity-style root file system: the
// /.singularity.d files, a relative /singularity link, an absolute link
// (startscript), a link escaping above the root (test), a loop and a SCIF app.
func makeRootfs(t testing.TB, o rootOpts) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	files := map[string]string{
		".singularity.d/labels.json":                  tLabels,
		".singularity.d/runscript":                    tRunscript,
		".singularity.d/runscript.help":               tHelp,
		".singularity.d/Singularity":                  tDeffile,
		".singularity.d/env/01-base.sh":               "#!/bin/sh\n",
		".singularity.d/env/10-docker2singularity.sh": tEnvDocker,
		".singularity.d/env/90-environment.sh":        tEnv90,
		".singularity.d/env/99-base.sh":               "#!/bin/sh\n",
		"opt/start.sh":                                tStartscript,
		"opt/test.sh":                                 tTest,
		"scif/apps/foo/scif/runscript":                tAppRun,
		"scif/apps/foo/scif/labels.json":              `{"APP": "foo"}`,
		"scif/apps/foo/scif/env/90-environment.sh":    "export APPVAR=1\n",
		"bin/sh": "not really a shell\n",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"singularity":                "/.singularity.d/runscript",
		".singularity.d/startscript": "/opt/start.sh",
		".singularity.d/test":        "../../../../../../opt/test.sh",
		"loop1":                      "loop2",
		"loop2":                      "/loop1",
		"dirlink":                    ".singularity.d",
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	if o.big {
		rnd := make([]byte, 300_000) // two full 128 KiB blocks and a fragment
		_, _ = rand.Read(rnd)
		writeFile(t, filepath.Join(root, "opt/random.bin"), rnd)
		writeFile(t, filepath.Join(root, "opt/zeros.bin"), make([]byte, 3<<17)) // sparse blocks
		writeFile(t, filepath.Join(root, "opt/text.txt"), bytes.Repeat([]byte("squashfs metadata only\n"), 60_000))
	}
	return root
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mksquashfs squashes root with the given compressor and extra options.
func mksquashfs(t testing.TB, root, comp string, extra ...string) string {
	t.Helper()
	bin := needMksquashfs(t)
	out := filepath.Join(t.TempDir(), "root-"+comp+".sqfs")
	args := append([]string{root, out, "-noappend", "-all-root", "-no-progress", "-quiet", "-comp", comp}, extra...)
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs %v: %v\n%s", args, err, b)
	}
	return out
}

// writeSIF wraps a squashfs into a SIF like `apptainer build`: a Def.FILE,
// optionally an inspect-metadata.json, and the primary partition.
func writeSIF(t testing.TB, dst, sqfs string, meta []byte) {
	t.Helper()
	part, err := os.Open(sqfs)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	var dis []sif.DescriptorInput
	def, err := sif.NewDescriptorInput(sif.DataDeffile, bytes.NewReader([]byte(tDeffile)))
	if err != nil {
		t.Fatal(err)
	}
	dis = append(dis, def)
	if meta != nil {
		m, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader(meta), sif.OptObjectName(MetadataDescriptorName))
		if err != nil {
			t.Fatal(err)
		}
		dis = append(dis, m)
	}
	p, err := sif.NewDescriptorInput(sif.DataPartition, part, sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	dis = append(dis, p)
	f, err := sif.CreateContainerAtPath(dst, sif.OptCreateWithDescriptors(dis...),
		sif.OptCreateWithLaunchScript(LaunchLine), sif.OptCreateDeterministic())
	if err != nil {
		t.Fatalf("create SIF: %v", err)
	}
	if err := f.UnloadContainer(); err != nil {
		t.Fatal(err)
	}
}

// writeSimg writes a Singularity 2.x image: the launch line, then the squashfs.
func writeSimg(t testing.TB, dst, payload string) {
	t.Helper()
	in, err := os.Open(payload)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.WriteString(out, LaunchLine); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// skipOrFail skips a test whose prerequisite is missing on a developer's
// machine, but fails it under CI (CI set), where scripts/test.sh provides
// everything: a green CI run must never mean "skipped".
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Package demo builds the standard offline fixture — a GitLab emulator
// serving real Singularity images as CI job artifacts — used by the
// `sregistry-demo` command, the end-to-end tests and the benchmarks.
package demo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/apptainer/sif/v2/pkg/sif"

	"github.com/sregistry/sregistry/internal/gitlabemu"
)

// LegacyHeader is the launch line Singularity 2.x prepended to squashfs images.
const LegacyHeader = "#!/usr/bin/env run-singularity\n"

// FindTestSIF locates the real busybox SIF shipped beside the repository
// (../shared/testdata/busybox_amd64.sif), searching upwards from dir.
func FindTestSIF(dir string) (string, error) {
	if p := os.Getenv("SREGISTRY_TEST_SIF"); p != "" {
		return p, nil
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		for _, rel := range []string{"shared/testdata/busybox_amd64.sif", "../shared/testdata/busybox_amd64.sif"} {
			p := filepath.Join(d, rel)
			if _, err := os.Stat(p); err == nil {
				return filepath.Clean(p), nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("busybox_amd64.sif not found (expected ../shared/testdata/busybox_amd64.sif beside the repository; or set SREGISTRY_TEST_SIF)")
		}
		d = parent
	}
}

// MakeLegacySimg writes a Singularity 2.x image (launch line + squashfs) made
// from the primary squashfs partition of the SIF at sifPath.
func MakeLegacySimg(sifPath, out string) error {
	fi, err := sif.LoadContainerFromPath(sifPath, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		return fmt.Errorf("load %s: %w", sifPath, err)
	}
	defer fi.UnloadContainer()
	d, err := fi.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return fmt.Errorf("%s has no primary partition: %w", sifPath, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, LegacyHeader); err != nil {
		f.Close()
		return err
	}
	if _, err := io.Copy(f, d.GetReader()); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o755); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Fixture describes what Populate put in the emulator.
type Fixture struct {
	Token        string // a personal access token
	JobToken     string // a CI job token
	PublicPath   string // "singularityhub/gitlab-ci"
	PrivatePath  string // "group/sub/proj" (nested groups, private)
	PublicJobID  int64  // job with build/Singularity.sif (busybox)
	LegacyJobID  int64  // job with build/Singularity.legacy.simg (2.x image)
	DevJobID     int64  // private project, ref dev, job "build", build/Singularity.dev.sif
	MainJobID    int64  // private project, ref main, build/Singularity.sif
	ExpiredJobID int64  // artifacts expired
	NotImageJob  int64  // build/Singularity.sif is an HTML page
	SIFPath      string
	SimgPath     string
}

// Populate adds the standard projects and jobs. work is a scratch folder for
// the generated legacy image.
func Populate(s *gitlabemu.Server, sifPath, work string) (*Fixture, error) {
	simg := filepath.Join(work, "Singularity.legacy.simg")
	if err := MakeLegacySimg(sifPath, simg); err != nil {
		return nil, err
	}
	fx := &Fixture{Token: "glpat-demo-0123456789abcdef", JobToken: "glcbt-demo-job-token-0001",
		PublicPath: "singularityhub/gitlab-ci", PrivatePath: "group/sub/proj", SIFPath: sifPath, SimgPath: simg}
	s.AddToken(fx.Token, gitlabemu.PersonalToken, false)
	s.AddToken(fx.JobToken, gitlabemu.JobToken, false)
	s.AddProject(gitlabemu.Project{Path: fx.PublicPath, Visibility: gitlabemu.Public, DefaultBranch: "master"})
	s.AddProject(gitlabemu.Project{Path: fx.PrivatePath, Visibility: gitlabemu.Private, DefaultBranch: "main"})
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	add := func(path string, j gitlabemu.Job) int64 {
		if j.CreatedAt.IsZero() {
			j.CreatedAt = t0
		}
		if j.FinishedAt.IsZero() {
			j.FinishedAt = j.CreatedAt.Add(3 * time.Minute)
		}
		t0 = t0.Add(time.Hour)
		return s.AddJob(path, j).ID
	}
	fx.LegacyJobID = add(fx.PublicPath, gitlabemu.Job{ID: 122059240, Name: "build", Ref: "master",
		Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.legacy.simg", File: simg}}})
	add(fx.PublicPath, gitlabemu.Job{Name: "test", Ref: "master"}) // no artifacts
	fx.PublicJobID = add(fx.PublicPath, gitlabemu.Job{ID: 122059246, Name: "build", Ref: "master",
		Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", File: sifPath}}})
	fx.ExpiredJobID = add(fx.PrivatePath, gitlabemu.Job{Name: "build", Ref: "main", Expired: true,
		Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", File: sifPath}}})
	fx.NotImageJob = add(fx.PrivatePath, gitlabemu.Job{Name: "html", Ref: "main",
		Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("<!DOCTYPE html>\n<html><head><title>Sign in · GitLab</title></head><body></body></html>\n")}}})
	fx.DevJobID = add(fx.PrivatePath, gitlabemu.Job{Name: "build", Ref: "dev",
		Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.dev.sif", File: sifPath, Method: 8}, {Path: "build/notes.txt", Data: []byte("built on dev\n")}}})
	fx.MainJobID = add(fx.PrivatePath, gitlabemu.Job{Name: "build", Ref: "main",
		Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", File: sifPath}, {Path: "build/Singularity.legacy.simg", File: simg}}})
	return fx, nil
}

package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sregistry/sregistry/internal/cli"
	"github.com/sregistry/sregistry/internal/config"
	"github.com/sregistry/sregistry/internal/gitlabemu"
	"github.com/sregistry/sregistry/internal/iostreams"
)

// Options configure Run.
type Options struct {
	SIF    string // image to serve; found with FindTestSIF when empty
	Keep   bool   // keep the temporary folder
	Stdout io.Writer
	Stderr io.Writer
}

// Run starts the emulator, populates it and runs the demo commands.
func Run(ctx context.Context, o Options) error {
	if o.SIF == "" {
		p, err := FindTestSIF(".")
		if err != nil {
			return err
		}
		o.SIF = p
	}
	work, err := os.MkdirTemp("", "sregistry-demo-")
	if err != nil {
		return err
	}
	if o.Keep {
		defer fmt.Fprintf(o.Stderr, "\nkept %s (HOME, catalog and storage of the demo)\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	// Object storage on another loopback address, like S3 behind GitLab;
	// where only 127.0.0.1 exists (macOS), another port is another host too.
	emu := gitlabemu.New(gitlabemu.Options{Dir: filepath.Join(work, "emulator"), TreeAPI: true, StorageHost: "127.0.0.2"})
	if err := emu.Start(); err != nil {
		emu = gitlabemu.New(gitlabemu.Options{Dir: filepath.Join(work, "emulator"), TreeAPI: true})
		if err := emu.Start(); err != nil {
			return fmt.Errorf("start GitLab emulator: %w", err)
		}
	}
	defer emu.Close()
	fx, err := Populate(emu, o.SIF, work)
	if err != nil {
		return err
	}
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	env := map[string]string{
		"HOME":                   home,
		"SREGISTRY_GITLAB_BASE":  emu.URL(),
		"SREGISTRY_GITLAB_TOKEN": fx.Token,
	}
	fmt.Fprintf(o.Stdout, "GitLab emulator: API %s, object storage %s\n", emu.URL(), emu.StorageURL())
	fmt.Fprintf(o.Stdout, "HOME=%s  SREGISTRY_GITLAB_BASE=%s  SREGISTRY_GITLAB_TOKEN=<redacted>\n", home, emu.URL())
	steps := [][]string{
		{"search", "gitlab://" + fx.PublicPath},
		{"search", "gitlab://" + fx.PrivatePath, "--latest"},
		{"pull", fmt.Sprintf("gitlab://%d,%s", fx.PublicJobID, fx.PublicPath)},
		{"pull", "gitlab://" + fx.PrivatePath + ":dev@dev"},
		{"pull", fmt.Sprintf("%d,%s:legacy", fx.LegacyJobID, fx.PublicPath)},
		{"images"},
		{"get", fx.PrivatePath + ":dev"},
		{"inspect", fx.PublicPath},
		{"inspect", "--labels", fx.PrivatePath + ":dev"},
		{"inspect", "--runscript", fx.PublicPath + ":legacy"},
	}
	ios := iostreams.System()
	ios.Out, ios.ErrOut = o.Stdout, o.Stderr
	for _, args := range steps {
		fmt.Fprintf(o.Stdout, "\n$ sregistry %s\n", strings.Join(args, " "))
		f := cli.NewFactory(ios, config.MapEnv(env), home)
		if code := cli.Run(ctx, f, args); code != 0 {
			return fmt.Errorf("sregistry %s exited %d", strings.Join(args, " "), code)
		}
	}
	// The security property the demo can show: the token went to the GitLab
	// host only, never to object storage.
	storageReqs, leaked := 0, 0
	for _, r := range emu.Requests() {
		if r.Listener != "storage" {
			continue
		}
		storageReqs++
		for _, h := range []string{"Private-Token", "Job-Token", "Authorization"} {
			if r.Header.Get(h) != "" {
				leaked++
			}
		}
	}
	fmt.Fprintf(o.Stdout, "\nObject-storage requests: %d, carrying a token: %d\n", storageReqs, leaked)
	if leaked > 0 {
		return fmt.Errorf("a token reached the object-storage host")
	}
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/image"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/storage"
	"github.com/sregistry/sregistry/internal/transfer"
)

// PullOptions are the options of `sregistry pull`.
type PullOptions struct {
	Image       string
	Name        string
	Force       bool
	NoCache     bool
	Artifact    string
	Job         string
	Connections int
	JSON        bool
}

const pullLong = `Download an image built in GitLab CI and add it to the catalog and storage
(<storage>/<collection>/<image>/<tag>@<sha256>.sif).

Image strings:
  <job_id>,<group>/<project>[:tag]             a job's artifacts (sregistry-cli form)
  <job_id>,<group>/<project>,<job_name>         the same, naming the job
  <group>/<project>[:tag][@ref]                 the newest successful job named
                                                SREGISTRY_GITLAB_JOB (or --job) on
                                                ref (any ref when omitted)
each with or without gitlab://. Nested groups (group/sub/project) work.

The tag picks the artifact in SREGISTRY_GITLAB_FOLDER (default build):
latest -> Singularity.sif, then Singularity.simg; <tag> -> Singularity.<tag>.sif,
Singularity.<tag>.simg, <tag>.sif, <tag>.simg. --artifact names any path.

The download goes through the GitLab API with your token (private projects
work); the token is never sent to the object-storage host GitLab redirects to.
Where the server honours byte ranges the image is fetched with parallel ranged
requests and an interrupted pull resumes; 5xx, 429 (Retry-After) and dropped
connections are retried. The file is hashed while written, its size and the
archive's CRC are verified, and it appears under its final name only when
complete. Progress is drawn on a terminal; otherwise one summary line.`

func newPullCmd(f *Factory) *cobra.Command {
	opts := &PullOptions{}
	cmd := &cobra.Command{
		Use:   "pull <image>",
		Short: "Download an image built in GitLab CI into the catalog",
		Long:  pullLong,
		Example: `  sregistry pull 122059246,singularityhub/gitlab-ci
  sregistry pull gitlab://group/sub/project:dev@main
  sregistry pull group/project --artifact out/app.sif
  sregistry pull --no-cache --name ./app.sif 123,group/project`,
		Args: exactArgs(1, "one image string"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Image = args[0]
			if opts.Connections < 0 || opts.Connections > 64 {
				return flagErrorf("--connections must be between 1 and 64 (got %d)", opts.Connections)
			}
			return runPull(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Name, "name", "", "catalog name <collection>/<image>[:tag] for the image; with --no-cache, the output file")
	fl.BoolVarP(&opts.Force, "force", "f", false, "pull even if this job's image is already present, replacing it")
	fl.BoolVar(&opts.NoCache, "no-cache", false, "do not add to the catalog: write the file to --name (or storage) only")
	fl.StringVar(&opts.Artifact, "artifact", "", "artifact path inside the job's archive, e.g. build/app.sif")
	fl.StringVar(&opts.Job, "job", "", "CI job name (default SREGISTRY_GITLAB_JOB, build)")
	fl.IntVar(&opts.Connections, "connections", 0, "parallel connections where ranges work (default SREGISTRY_GITLAB_CONNECTIONS or 4)")
	fl.BoolVar(&opts.JSON, "json", false, "print the catalog record as JSON instead of the result lines")
	return cmd
}

func runPull(ctx context.Context, f *Factory, opts *PullOptions) error {
	scheme, rest := names.SplitScheme(opts.Image)
	be, err := f.Backend(scheme)
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	f.Header(be.Name())

	var override *names.Name
	if opts.Name != "" && !opts.NoCache && !cfg.Disable {
		_, nrest := names.SplitScheme(opts.Name)
		n, err := names.Parse(nrest)
		if err != nil {
			return &FlagError{Err: fmt.Errorf("--name: %w", err)}
		}
		override = &n
	}
	var store *storage.Store
	if !opts.NoCache && !cfg.Disable {
		if store, err = f.Store(ctx, "pull"); err != nil {
			return err
		}
	}
	// outputPath is where an uncataloged pull lands.
	outputPath := func(n names.Name) (string, error) {
		if opts.Name != "" {
			p, err := filepath.Abs(opts.Name)
			if st, serr := os.Stat(p); err == nil && serr == nil && st.IsDir() {
				p = filepath.Join(p, n.Image+":"+n.Tag+".sif") // --name <folder>
			}
			return p, err
		}
		if cfg.Disable {
			return filepath.Abs(n.Image + ":" + n.Tag + ".sif")
		}
		s, err := storage.New(cfg.Storage, nil)
		if err != nil {
			return "", err
		}
		return s.PathFor(n)
	}
	catName := func(n names.Name) names.Name {
		if override != nil {
			return *override
		}
		return n
	}
	req := backend.PullRequest{
		Ref:         rest,
		Artifact:    opts.Artifact,
		Job:         opts.Job,
		Connections: opts.Connections,
		Progress:    f.Progress(),
		Logf:        f.Infof,
		Dir: func(n names.Name) (string, error) {
			var dir string
			if store != nil {
				d, err := store.Dir(catName(n))
				if err != nil {
					return "", err
				}
				dir = d
			} else {
				p, err := outputPath(n)
				if err != nil {
					return "", err
				}
				dir = filepath.Dir(p)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return "", err
				}
			}
			// Housekeeping: what killed pulls left behind long ago.
			for _, p := range transfer.SweepStale(dir, f.Now()) {
				f.Debugf("removed stale %s", p)
			}
			return dir, nil
		},
		Check: func(n names.Name, info backend.PullInfo) error {
			if opts.Force {
				return nil
			}
			if store == nil {
				p, err := outputPath(n)
				if err != nil {
					return err
				}
				if _, err := os.Stat(p); err == nil {
					return withHint(fmt.Errorf("Image exists! %s", p), "Remove first, or use --force to overwrite")
				}
				return nil
			}
			cn := catName(n)
			c, err := store.Catalog.Get(ctx, catalog.Query{Collection: cn.FullCollection(), Name: cn.Image, Tag: cn.Tag, JobID: info.JobID})
			if err != nil {
				return nil
			}
			if _, err := os.Stat(c.Image); err == nil {
				return withHint(fmt.Errorf("Image exists! %s is %s (job %d)", c.URI, c.Image, info.JobID), "Remove first, or use --force to pull it again")
			}
			return nil
		},
	}
	res, err := be.Pull(ctx, req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return withHint(fmt.Errorf("pull interrupted"), "run the same pull again: completed parts of the download are reused where the server supports it")
		}
		return err
	}
	if res.Release != nil {
		defer res.Release()
	}
	metrics, err := pulledMetrics(f, res)
	if err != nil {
		os.Remove(res.Path)
		return err
	}
	if store == nil {
		p, err := outputPath(res.Name)
		if err != nil {
			os.Remove(res.Path)
			return err
		}
		if err := os.Rename(res.Path, p); err != nil {
			os.Remove(res.Path)
			return fmt.Errorf("place %s: %w", p, err)
		}
		if opts.JSON {
			return writeJSON(f.IO.Out, map[string]any{"image": p, "size": res.Size, "sha256": res.SHA256, "pull": res.Info}, "    ")
		}
		fmt.Fprintf(f.IO.Out, "Success! %s\n", p)
		return nil
	}
	name := catName(res.Name)
	c, created, err := store.Adopt(ctx, res.Path, name, res.SHA256, storage.AddOptions{
		Client: be.Name(), URL: res.Info.SourceURL, Metrics: metrics, Pull: res.Info,
	})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, record(c), "    ")
	}
	printContainerLine(f, created, c.URI)
	fmt.Fprintf(f.IO.Out, "Success! %s\n", c.Image)
	return nil
}

// pulledMetrics reads the metadata of a downloaded file. A download that is
// not an image (an HTML page, a zip, a JSON error body...) or is truncated is
// refused: nothing is stored or cataloged.
func pulledMetrics(f *Factory, res *backend.PullResult) (map[string]any, error) {
	info, err := image.Inspect(res.Path)
	if err != nil {
		// The temp file's name means nothing to the user: name the artifact.
		msg := strings.ReplaceAll(err.Error(), res.Path, res.Info.ArtifactPath)
		msg = strings.TrimPrefix(msg, "inspect "+res.Info.ArtifactPath+": ")
		if errors.Is(err, image.ErrNotImage) || errors.Is(err, image.ErrTruncated) {
			return nil, withHint(fmt.Errorf("artifact %s of job %d: %s", res.Info.ArtifactPath, res.Info.JobID, msg),
				"nothing was stored; check the job's artifacts (sregistry search shows them on GitLab 18.8+) or pass --artifact")
		}
		f.Warnf("could not read the metadata of %s: %s", res.Info.ArtifactPath, msg)
		return nil, nil
	}
	for _, w := range info.Warnings {
		f.Debugf("%s", w)
	}
	return info.Metrics(), nil
}

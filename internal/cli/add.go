package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/image"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/storage"
)

// AddOptions are the options of `sregistry add`.
type AddOptions struct {
	File  string
	Name  string
	Copy  bool
	Force bool
}

func newAddCmd(f *Factory) *cobra.Command {
	opts := &AddOptions{}
	cmd := &cobra.Command{
		Use:   "add <file> --name <collection>/<image>[:tag][@version]",
		Short: "Add a local image file to the catalog and storage",
		Long: `Move (or with --copy, copy) an image file into storage as
<storage>/<collection>/<image>/<tag>@<sha256>.sif and record it in the catalog.
The sha256 is computed while copying; the file appears under its final name
only once complete. The image's metadata is read and stored with the record.`,
		Example: `  sregistry add ./busybox.sif --name tools/busybox:1.33
  sregistry add --copy ./lolcow.sif --name gitlab://group/sub/lolcow`,
		Args: exactArgs(1, "one image file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if opts.Name == "" {
				return flagErrorf("You must provide an image uri --name <collection>/<namespace>")
			}
			return runAdd(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "catalog name: <collection>/<image>[:tag][@version] (required)")
	cmd.Flags().BoolVar(&opts.Copy, "copy", false, "copy the file instead of moving it")
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "add even if the file does not look like a Singularity/Apptainer image")
	return cmd
}

func runAdd(ctx context.Context, f *Factory, opts *AddOptions) error {
	st, err := os.Stat(opts.File)
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("Cannot find %s", opts.File)
	}
	scheme, rest := names.SplitScheme(opts.Name)
	n, err := names.Parse(rest)
	if err != nil {
		return &FlagError{Err: err}
	}
	metrics, err := imageMetrics(f, opts.File, opts.Force)
	if err != nil {
		return err
	}
	store, err := f.Store(ctx, "add")
	if err != nil {
		return err
	}
	cfg, _ := f.Config()
	client := scheme
	if client == "" {
		client = cfg.Client
	}
	c, created, err := store.Add(ctx, opts.File, n, storage.AddOptions{Copy: opts.Copy, Client: client, Metrics: metrics})
	if err != nil {
		return err
	}
	printContainerLine(f, created, c.URI)
	return nil
}

// imageMetrics reads an image's metadata for the catalog. A file that is not
// an image (or is truncated) is refused unless force is set.
func imageMetrics(f *Factory, path string, force bool) (map[string]any, error) {
	info, err := image.Inspect(path)
	if err != nil {
		if force {
			f.Warnf("%v; adding it anyway (--force)", err)
			return nil, nil
		}
		if errors.Is(err, image.ErrNotImage) || errors.Is(err, image.ErrTruncated) {
			return nil, withHint(fmt.Errorf("%s: %w", path, err), "use --force to add it anyway")
		}
		f.Warnf("could not read metadata of %s: %v", path, err)
		return nil, nil
	}
	for _, w := range info.Warnings {
		f.Debugf("%s", w)
	}
	return info.Metrics(), nil
}

func printContainerLine(f *Factory, created bool, uri string) {
	state := "update"
	if created {
		state = "new"
	}
	fmt.Fprintf(f.IO.Out, "[container][%s] %s\n", state, uri)
}

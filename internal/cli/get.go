package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/catalog"
)

func newGetCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "get <image>",
		Short: "Print the file path of a cataloged image",
		Long: `Print only the file path of an image in the local catalog, so that
"singularity run $(sregistry get group/project:tag)" works. When several
versions share a tag the newest is chosen; name one with @<version>.`,
		Example: `  sregistry get singularityhub/gitlab-ci
  singularity run "$(sregistry get group/sub/proj:dev)"`,
		Args: exactArgs(1, "one image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGet(cmd.Context(), f, args[0])
		},
	}
}

func runGet(ctx context.Context, f *Factory, query string) error {
	c, err := f.lookup(ctx, query, "get for images")
	if errors.Is(err, catalog.ErrNotFound) {
		return withHint(fmt.Errorf("image %s not found in database", query), "list what is there with `sregistry images`")
	}
	if err != nil {
		return err
	}
	switch {
	case c.Image != "":
		fmt.Fprintln(f.IO.Out, c.Image)
	case c.URL != "":
		fmt.Fprintln(f.IO.Out, c.URL)
	default:
		f.Infof("No storage file found for %s", query)
	}
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/storage"
)

func newRmCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "rm <image>",
		Short: "Remove an image from the catalog and delete its file",
		Long: `Print the image's path, delete its catalog record, then its file. A file that
was already gone is reported, and the command still succeeds.`,
		Example: `  sregistry rm group/proj:latest
  sregistry rm group/proj:latest@<sha256>`,
		Args: exactArgs(1, "one image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRm(cmd.Context(), f, args[0])
		},
	}
}

func runRm(ctx context.Context, f *Factory, query string) error {
	f.Header("")
	c, err := f.lookup(ctx, query, "rm")
	if errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("No %s record found in the database", query)
	}
	if err != nil {
		return err
	}
	store, err := f.Store(ctx, "rm")
	if err != nil {
		return err
	}
	if c.Image != "" {
		fmt.Fprintln(f.IO.Out, c.Image)
	}
	res, err := store.Remove(ctx, c)
	if err != nil {
		return err
	}
	if res.FileMissing {
		if c.Image == "" {
			f.Infof("[rm] %s (the record had no file)", c.URI)
		} else {
			f.Warnf("image file %s was already gone; removed the catalog record", c.Image)
		}
	}
	return nil
}

func newMvCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "mv <image> <path>",
		Short: "Move an image file elsewhere and update the catalog",
		Long: `Move a cataloged image's file to <path> (an existing folder, or a new file
path) and record the new location. If the catalog cannot be updated the file
is moved back, so the record never points to a missing file.`,
		Example: `  sregistry mv group/proj:latest /scratch/images/
  sregistry mv group/proj:latest /scratch/images/proj.sif`,
		Args: exactArgs(2, "an image name and a destination path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMv(cmd.Context(), f, args[0], args[1])
		},
	}
}

func runMv(ctx context.Context, f *Factory, query, dest string) error {
	c, store, err := f.openForChange(ctx, query, "mv")
	if err != nil {
		return err
	}
	newPath, err := store.Move(ctx, c, dest)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "[move] %s => %s\n", filepath.Base(c.Image), newPath)
	return nil
}

func newRenameCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "rename <image> <new-name>",
		Short: "Give a cataloged image a new name (its file moves inside storage)",
		Long: `Rename a cataloged image to <collection>/<image>[:tag]; its version (sha256)
is kept and its file moves to the matching place in storage. If the catalog
cannot be updated the file is moved back.`,
		Example: `  sregistry rename group/proj:latest group/proj:v1.2`,
		Args:    exactArgs(2, "an image name and a new name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRename(cmd.Context(), f, args[0], args[1])
		},
	}
}

func runRename(ctx context.Context, f *Factory, query, newName string) error {
	c, store, err := f.openForChange(ctx, query, "rename")
	if err != nil {
		return err
	}
	_, rest := names.SplitScheme(newName)
	n, err := names.Parse(rest)
	if err != nil {
		return &FlagError{Err: err}
	}
	newPath, err := store.Rename(ctx, c, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "[rename] %s => %s\n", filepath.Base(c.Image), newPath)
	return nil
}

// openForChange prints the header and finds the catalog entry a command
// will move or rename, with the store that does it.
func (f *Factory) openForChange(ctx context.Context, query, what string) (catalog.Container, *storage.Store, error) {
	f.Header("")
	c, err := f.lookup(ctx, query, what)
	if errors.Is(err, catalog.ErrNotFound) {
		return c, nil, fmt.Errorf("%s not found", query)
	}
	if err != nil {
		return c, nil, err
	}
	store, err := f.Store(ctx, what)
	return c, store, err
}

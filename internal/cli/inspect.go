package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/image"
)

// InspectOptions are the options of `sregistry inspect`.
type InspectOptions struct {
	Query       string
	File        string
	Section     string // labels, deffile, runscript, startscript, test, helpfile, environment
	JSON        bool   // apptainer-style {"data":{"attributes":...},"type":"container"}
	Descriptors bool
	Verify      bool
	Keyrings    []string
}

var inspectSections = []string{"labels", "deffile", "runscript", "startscript", "test", "helpfile", "environment"}

func newInspectCmd(f *Factory) *cobra.Command {
	opts := &InspectOptions{}
	sections := map[string]*bool{}
	cmd := &cobra.Command{
		Use:   "inspect <image> | --file <path>",
		Short: "Show an image's catalog record and metadata (no singularity needed)",
		Long: `Print the image path, then its catalog record as JSON (as sregistry-cli did).

The image's own metadata (labels, definition file, runscript, environment,
test, help) is read natively from SIF images (descriptors, inspect-metadata.json
and the squashfs /.singularity.d files) and from legacy 2.x .simg images.
--file inspects a file that is not in the catalog. A section flag prints just
that section; --json prints what 'apptainer inspect --json' would show.`,
		Example: `  sregistry inspect group/proj:latest
  sregistry inspect --labels group/proj
  sregistry inspect --file ./busybox.sif --descriptors
  sregistry inspect --file ./busybox.sif --verify --keyring pubkeys.asc`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.File != "" && len(args) > 0:
				return flagErrorf("give an image name or --file, not both")
			case opts.File == "" && len(args) != 1:
				return flagErrorf("inspect expects one image name (or --file <path>)")
			case len(args) == 1:
				opts.Query = args[0]
			}
			for _, s := range inspectSections {
				if *sections[s] {
					if opts.Section != "" {
						return flagErrorf("pick one section flag (--%s or --%s)", opts.Section, s)
					}
					opts.Section = s
				}
			}
			return runInspect(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.File, "file", "", "inspect this image file instead of a catalog entry")
	for _, s := range inspectSections {
		sections[s] = new(bool)
		fl.BoolVar(sections[s], s, false, "print only the "+s)
	}
	fl.BoolVar(&opts.JSON, "json", false, "print the metadata as 'apptainer inspect --json' does")
	fl.BoolVar(&opts.Descriptors, "descriptors", false, "list the SIF data objects")
	fl.BoolVar(&opts.Verify, "verify", false, "verify the SIF signatures (PGP keys from --keyring or the apptainer/singularity keyrings)")
	fl.StringSliceVar(&opts.Keyrings, "keyring", nil, "public keyring file (armored or binary) for --verify; repeatable")
	return cmd
}

func runInspect(ctx context.Context, f *Factory, opts *InspectOptions) error {
	path := opts.File
	var rec *catalog.Container
	if opts.Query != "" {
		c, err := f.lookup(ctx, opts.Query, "inspect")
		if errors.Is(err, catalog.ErrNotFound) {
			return withHint(fmt.Errorf("image %s was not found in the database", opts.Query), "use --file <path> for an image outside the catalog")
		}
		if err != nil {
			return err
		}
		rec, path = &c, c.Image
	}
	plainRecord := rec != nil && opts.Section == "" && !opts.JSON && !opts.Descriptors && !opts.Verify
	if plainRecord {
		fmt.Fprintln(f.IO.Out, path)
		return writeJSON(f.IO.Out, record(*rec), "    ")
	}
	if path == "" {
		return fmt.Errorf("no image file recorded for %s", opts.Query)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("cannot read image file: %w", err)
	}
	if opts.Verify {
		return runVerify(f, path, opts.Keyrings)
	}
	info, err := image.Inspect(path)
	if err != nil {
		// A recognised image whose content cannot be read still has its
		// format and descriptors: show those with --descriptors.
		if info == nil || !opts.Descriptors {
			return fmt.Errorf("inspect %s: %w", path, err)
		}
		f.Warnf("%v", err)
	}
	for _, w := range info.Warnings {
		f.Warnf("%s", w)
	}
	switch {
	case opts.Descriptors:
		return writeDescriptors(f, info)
	case opts.Section != "":
		return writeSection(f, info, opts.Section)
	case opts.JSON:
		b, err := image.MarshalInspectJSON(info.Attributes)
		if err != nil {
			return err
		}
		_, err = f.IO.Out.Write(b)
		return err
	}
	// --file without flags: the path, then everything we know.
	fmt.Fprintln(f.IO.Out, path)
	return writeJSON(f.IO.Out, info, "    ")
}

func writeSection(f *Factory, info *image.Info, section string) error {
	a := info.Attributes
	if a == nil {
		return fmt.Errorf("no metadata can be read from this %s image", info.Format)
	}
	text := ""
	switch section {
	case "labels":
		if len(a.Labels) == 0 {
			return fmt.Errorf("the image has no labels")
		}
		return writeJSON(f.IO.Out, a.Labels, "    ")
	case "environment":
		keys := make([]string, 0, len(a.Environment))
		for k := range a.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "# %s\n%s\n", k, a.Environment[k])
		}
		text = strings.TrimRight(b.String(), "\n")
	case "deffile":
		text = a.Deffile
	case "runscript":
		text = a.Runscript
	case "startscript":
		text = a.Startscript
	case "test":
		text = a.Test
	case "helpfile":
		text = a.Helpfile
	}
	if text == "" {
		return fmt.Errorf("the image has no %s", section)
	}
	fmt.Fprintln(f.IO.Out, text)
	return nil
}

func writeDescriptors(f *Factory, info *image.Info) error {
	if info.SIF == nil {
		return fmt.Errorf("%s images have no SIF descriptors", info.Format)
	}
	fmt.Fprintf(f.IO.Out, "SIF %s  arch %s  created %s\n", info.SIF.ID, info.SIF.Arch, info.SIF.Created.UTC().Format("2006-01-02T15:04:05Z"))
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGROUP\tLINK\tTYPE\tNAME\tSIZE\tDETAILS")
	for _, d := range info.SIF.Descriptors {
		details := strings.TrimSpace(strings.Join([]string{d.FSType, d.PartType, d.Arch, d.HashType, d.Fingerprint}, " "))
		details = strings.Join(strings.Fields(details), " ")
		link := "-"
		if d.LinkedID != 0 {
			link = fmt.Sprint(d.LinkedID)
			if d.LinkIsGroup {
				link = "group " + link
			}
		}
		group := "-"
		if d.GroupID != 0 {
			group = fmt.Sprint(d.GroupID)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, group, link, d.Type, d.Name, d.Size, details)
	}
	return tw.Flush()
}

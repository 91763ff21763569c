package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/catalog"
)

// ImagesOptions are the options of `sregistry images`.
type ImagesOptions struct {
	Queries []string
	JSON    bool
}

func newImagesCmd(f *Factory) *cobra.Command {
	opts := &ImagesOptions{}
	cmd := &cobra.Command{
		Use:   "images [query...]",
		Short: "List images in the local catalog",
		Long: `List images in the local catalog. A query matches an image whose name equals
it, or whose name, tag or URI contains it (case-insensitive). Each query prints
its own listing; no query (or "*") lists everything.`,
		Example: `  sregistry images
  sregistry images gitlab-ci
  sregistry images --json | jq -r '.[].image'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Queries = args
			return runImages(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the records as a JSON array")
	return cmd
}

func runImages(ctx context.Context, f *Factory, opts *ImagesOptions) error {
	cat, err := f.Catalog(ctx, "listing images")
	if err != nil {
		return err
	}
	queries := opts.Queries
	if len(queries) == 0 {
		queries = []string{"*"}
	}
	var all []catalog.Container
	for _, q := range queries {
		list := cat.ListBrief
		if opts.JSON {
			list = cat.List
		}
		rows, err := list(ctx, q)
		if err != nil {
			return err
		}
		if opts.JSON {
			all = append(all, rows...)
			continue
		}
		writeImagesTable(f.IO.Out, rows)
	}
	if opts.JSON {
		recs := make([]map[string]any, 0, len(all))
		for _, c := range all {
			recs = append(recs, record(c))
		}
		return writeJSON(f.IO.Out, recs, "  ")
	}
	return nil
}

// writeImagesTable prints rows the way sregistry-cli did:
//
//	Containers:   [date]   [client]	[uri]
//	1  November 24, 2026	   [gitlab]	group/proj:latest@<sha256>
func writeImagesTable(w io.Writer, rows []catalog.Container) {
	if len(rows) == 0 {
		return
	}
	var b bytes.Buffer
	b.Grow(len(rows) * 128)
	b.WriteString("Containers:   [date]   [client]\t[uri]\n")
	for i, c := range rows {
		idx := fmt.Sprint(i + 1)
		if len(idx) < 2 {
			idx += strings.Repeat(" ", 2-len(idx))
		}
		fmt.Fprintf(&b, "%s %s\t   [%s]\t%s\n", idx, c.CreatedAt.Format("January 02, 2006"), c.Client, displayURI(c))
	}
	w.Write(b.Bytes())
}

// displayURI rebuilds collection/name:tag[@version] from the columns, as the original did.
func displayURI(c catalog.Container) string {
	u := c.Collection + "/" + c.Name + ":" + c.Tag
	if c.Version != "" {
		u += "@" + c.Version
	}
	return u
}

// record is the JSON shape sregistry-cli's inspect printed (plus "pull").
func record(c catalog.Container) map[string]any {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var metrics any = map[string]any{}
	if len(c.Metrics) > 0 {
		var m any
		if json.Unmarshal(c.Metrics, &m) == nil {
			metrics = m
		}
	}
	r := map[string]any{
		"client":        c.Client,
		"collection":    c.Collection,
		"collection_id": c.CollectionID,
		"created_at":    c.CreatedAt.UTC().Format("2006-01-02 15:04:05"),
		"id":            c.ID,
		"image":         nullable(c.Image),
		"metrics":       metrics,
		"name":          c.Name,
		"tag":           c.Tag,
		"uri":           nullable(c.URI),
		"url":           nullable(c.URL),
		"version":       nullable(c.Version),
	}
	if len(c.Pull) > 0 {
		var p any
		if json.Unmarshal(c.Pull, &p) == nil {
			r["pull"] = p
		}
	}
	return r
}

// writeJSON writes v indented, with sorted map keys and no HTML escaping.
func writeJSON(w io.Writer, v any, indent string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	return enc.Encode(v)
}

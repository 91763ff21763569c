package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/progress"
)

// SearchOptions are the options of `sregistry search`.
type SearchOptions struct {
	Queries []string
	Job     string
	Ref     string
	Latest  bool
	Limit   int
	JSON    bool
}

func newSearchCmd(f *Factory) *cobra.Command {
	opts := &SearchOptions{}
	cmd := &cobra.Command{
		Use:   "search [gitlab://]<group>/<project>...",
		Short: "List a GitLab project's successful CI jobs that have artifacts",
		Long: `List the successful jobs with artifacts of a GitLab project (all pages,
newest first): job id, job name, ref, finish time, archive size, the string to
give to pull, and the artifacts browse URL. On GitLab 18.8+ the image files
(.sif/.simg) inside each job are listed with their tags.

Needs a token (SREGISTRY_GITLAB_TOKEN, read_api scope): GitLab requires
authentication to list jobs, even of public projects.`,
		Example: `  sregistry search gitlab://singularityhub/gitlab-ci
  sregistry search group/sub/project --job build --ref main --latest
  sregistry search group/project --limit 5 --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Queries = args
			if opts.Limit < 0 {
				return flagErrorf("--limit must be >= 0")
			}
			return runSearch(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Job, "job", "", "only jobs with this name")
	fl.StringVar(&opts.Ref, "ref", "", "only jobs on this branch or tag")
	fl.BoolVar(&opts.Latest, "latest", false, "only the newest job per job name and ref")
	fl.IntVar(&opts.Limit, "limit", 0, "at most this many jobs (0 = all)")
	fl.BoolVar(&opts.JSON, "json", false, "print results as a JSON array")
	fl.String("endpoint", "", "ignored (kept for sregistry-cli compatibility)")
	return cmd
}

func runSearch(ctx context.Context, f *Factory, opts *SearchOptions) error {
	if len(opts.Queries) == 0 || (len(opts.Queries) == 1 && opts.Queries[0] == "*") {
		return flagErrorf("You must include a collection query, <collection>/<repo>")
	}
	var all []backend.SearchResult
	for _, q := range opts.Queries {
		scheme, rest := names.SplitScheme(q)
		be, err := f.Backend(scheme)
		if err != nil {
			return err
		}
		f.Header(be.Name())
		res, err := be.Search(ctx, backend.SearchQuery{Query: rest, Job: opts.Job, Ref: opts.Ref, Latest: opts.Latest, Limit: opts.Limit})
		if err != nil {
			return err
		}
		if opts.JSON {
			all = append(all, res...)
			continue
		}
		if len(res) == 0 {
			f.Infof("No potential archives found in artifacts.")
			continue
		}
		writeSearchTable(f, res)
	}
	if opts.JSON {
		if all == nil {
			all = []backend.SearchResult{}
		}
		return writeJSON(f.IO.Out, all, "  ")
	}
	return nil
}

func writeSearchTable(f *Factory, res []backend.SearchResult) {
	w := f.IO.Out
	fmt.Fprintln(w, "Artifact Browsers (you will need path and job id for pull)")
	rows := [][]string{{"job_id", "job_name", "ref", "finished", "size", "images", "pull", "browser"}}
	listed, unlisted := false, 0
	for _, r := range res {
		imgs := "-"
		if r.Images == nil {
			unlisted++
		} else {
			listed = true
			var parts []string
			for _, im := range r.Images {
				parts = append(parts, fmt.Sprintf("%s(%s)", im.Path, im.Tag))
			}
			if len(parts) > 0 {
				imgs = strings.Join(parts, ",")
			} else {
				imgs = "none"
			}
		}
		finished := "-"
		if !r.FinishedAt.IsZero() {
			finished = r.FinishedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		rows = append(rows, []string{fmt.Sprint(r.JobID), r.JobName, r.Ref, finished, progress.FormatBytes(r.ArtifactSize), imgs, r.PullRef, r.BrowseURL})
	}
	for i, row := range rows {
		idx := fmt.Sprint(i + 1)
		if len(idx) < 2 {
			idx += " "
		}
		fmt.Fprintf(w, "%s %s\n", idx, strings.Join(row, "\t"))
	}
	if listed && unlisted > 0 {
		f.Infof("(image files are listed for the %d newest jobs; narrow the search with --job, --ref, --latest or --limit)", len(res)-unlisted)
	}
	if !listed {
		f.Infof("(image file names need GitLab 18.8+; pull tries <folder>/Singularity[.<tag>].sif, then .simg — or pass --artifact)")
	}
}

package gitlab

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/names"
)

// errNoQuery keeps the original's wording.
var errNoQuery = errors.New("You must include a collection query, <group>/<project>")

// Search lists the successful jobs of one project that have an artifacts
// archive, newest first. Unlike the original (first 20 jobs only, errors
// reported as "no results") it reads every page, filters by job name and
// ref, optionally keeps only the newest job per (name, ref), stops paging as
// soon as the answer is complete, and reports errors.
func (b *Backend) Search(ctx context.Context, q backend.SearchQuery) ([]backend.SearchResult, error) {
	query := strings.Trim(strings.TrimSpace(q.Query), "/")
	if query == "" || query == "*" {
		return nil, errNoQuery
	}
	if err := validProjectPath(query); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoQuery, err)
	}
	if b.token == "" {
		return nil, fmt.Errorf("searching %s: GitLab lists jobs only to authenticated users: %w", query, errNoToken)
	}
	path := query
	if isNumber(query) {
		p, err := b.getProject(ctx, query)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", query, err)
		}
		path = p.PathWithNamespace
	}

	// With --latest, --job and --ref at most one job can match.
	single := q.Latest && q.Job != "" && q.Ref != ""
	pager := b.newJobPager(path)
	seen := map[string]bool{}
	var results []backend.SearchResult
	scanned := 0
	done := false
	for !done {
		jobs, err := pager.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", path, err)
		}
		if jobs == nil {
			break
		}
		for _, j := range jobs {
			scanned++
			if j.Status != "" && j.Status != "success" {
				continue
			}
			arch := archiveOf(j)
			if arch == nil {
				continue
			}
			if q.Job != "" && j.Name != q.Job {
				continue
			}
			if q.Ref != "" && j.Ref != q.Ref {
				continue
			}
			if q.Latest {
				key := j.Name + "\x00" + j.Ref
				if seen[key] {
					continue
				}
				seen[key] = true
			}
			results = append(results, b.searchResult(path, j.ID, j.Name, j.Ref, j.FinishedAt, arch.Size))
			if (q.Limit > 0 && len(results) >= q.Limit) || single {
				done = true
				break
			}
		}
	}
	b.cfg.Debugf("gitlab: search %s: %d jobs scanned in %d API requests, %d results", path, scanned, pager.Requests, len(results))
	sort.SliceStable(results, func(i, k int) bool { return results[i].JobID > results[k].JobID })
	if err := b.addImages(ctx, path, results); err != nil {
		return nil, fmt.Errorf("search %s: %w", path, err)
	}
	return results, nil
}

func (b *Backend) searchResult(path string, id int64, name, ref string, finished *time.Time, size int64) backend.SearchResult {
	r := backend.SearchResult{
		Project:      path,
		JobID:        id,
		JobName:      name,
		Ref:          ref,
		ArtifactSize: size,
		// The browse page of the folder holding the images (the original put
		// the job name here, which only worked when both were "build").
		BrowseURL: b.webURL(path, "-/jobs", strconv.FormatInt(id, 10), "artifacts/browse", b.folder),
		PullRef:   fmt.Sprintf("%d,%s", id, path),
	}
	if finished != nil {
		r.FinishedAt = *finished
	}
	if name != b.job {
		r.PullRef += "," + name
	}
	return r
}

// MaxImageListings caps the artifacts-tree lookups of one search (one
// request each): only the newest results get their image files listed, the
// rest keep Images nil. Filters (--job, --ref, --latest, --limit) narrow a
// search to what matters.
const MaxImageListings = 50

// addImages fills Images from the artifacts tree API when the server has it
// (probed once with the first result); otherwise Images stays nil.
func (b *Backend) addImages(ctx context.Context, path string, results []backend.SearchResult) error {
	if len(results) == 0 {
		return nil
	}
	imgs, err := b.images(ctx, path, results[0].JobID)
	switch {
	case errors.Is(err, errNoTreeAPI):
		b.cfg.Debugf("gitlab: %v; search results will not list image files", err)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		b.cfg.Debugf("gitlab: list files of job %d: %v", results[0].JobID, err)
	default:
		results[0].Images = imgs
	}
	if len(results) == 1 {
		return nil
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(treeWorkers, len(results)-1) {
		wg.Go(func() {
			for i := range work {
				imgs, err := b.images(ctx, path, results[i].JobID)
				if err != nil {
					b.cfg.Debugf("gitlab: list files of job %d: %v", results[i].JobID, err)
					continue
				}
				results[i].Images = imgs
			}
		})
	}
	for i := 1; i < min(len(results), MaxImageListings) && ctx.Err() == nil; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	return ctx.Err()
}

// images lists the .sif/.simg files of a job's artifacts (non-nil, maybe empty).
func (b *Backend) images(ctx context.Context, project string, jobID int64) ([]backend.Image, error) {
	entries, err := b.listTree(ctx, project, jobID)
	if err != nil {
		return nil, err
	}
	imgs := []backend.Image{}
	for _, e := range entries {
		if isImagePath(e.Path) {
			imgs = append(imgs, backend.Image{Path: e.Path, Tag: names.TagFromArtifact(e.Path), Size: e.Size})
		}
	}
	return imgs, nil
}

// isImagePath reports whether an artifact path names a Singularity image.
func isImagePath(p string) bool {
	l := strings.ToLower(p)
	return strings.HasSuffix(l, ".sif") || strings.HasSuffix(l, ".simg")
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

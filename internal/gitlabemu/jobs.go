package gitlabemu

import (
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validScopes is CommitStatus::AVAILABLE_STATUSES.
var validScopes = []string{"created", "waiting_for_resource", "preparing", "waiting_for_callback",
	"pending", "running", "success", "failed", "canceling", "canceled", "skipped", "manual", "scheduled"}

const (
	defaultPerPage = 20
	maxPerPage     = 100
)

// pageParams are offset-pagination parameters.
type pageParams struct{ page, perPage int }

func (p pageParams) offset() int { return (p.page - 1) * p.perPage }

// parsePage validates page/per_page like Grape + Kaminari: non-integers are
// invalid, per_page=0 is rejected, larger than 100 is capped.
func parsePage(q url.Values) (pageParams, *apiError) {
	p := pageParams{page: 1, perPage: defaultPerPage}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			e := paramInvalid("page")
			return p, &e
		}
		p.page = max(n, 1)
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			e := paramInvalid("per_page")
			return p, &e
		}
		if n == 0 {
			return p, &errPerPageZero
		}
		if n > 0 {
			p.perPage = min(n, maxPerPage)
		}
	}
	return p, nil
}

// pageSlice returns the items of one page (empty beyond the end).
func pageSlice[T any](all []T, p pageParams) []T {
	lo := min(p.offset(), len(all))
	hi := min(lo+p.perPage, len(all))
	return all[lo:hi]
}

// setOffsetHeaders writes GitLab's without_count offset headers: X-Next-Page
// and X-Prev-Page always present (empty when none), never X-Total or
// X-Total-Pages, Link with prev/next/first but no last. Out-of-range pages
// (empty) have neither prev nor next, as with Kaminari's without_count.
func (s *Server) setOffsetHeaders(w http.ResponseWriter, r *http.Request, p pageParams, nonEmpty, hasNext bool) {
	next, prev := "", ""
	if nonEmpty && hasNext {
		next = strconv.Itoa(p.page + 1)
	}
	if nonEmpty && p.page > 1 {
		prev = strconv.Itoa(p.page - 1)
	}
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(p.page))
	h.Set("X-Per-Page", strconv.Itoa(p.perPage))
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	var links []string
	link := func(page, rel string) {
		q := r.URL.Query()
		q.Set("page", page)
		q.Set("per_page", strconv.Itoa(p.perPage))
		links = append(links, "<"+s.apiURL+r.URL.EscapedPath()+"?"+q.Encode()+`>; rel="`+rel+`"`)
	}
	if prev != "" {
		link(prev, "prev")
	}
	if next != "" {
		link(next, "next")
	}
	link("1", "first")
	h.Set("Link", strings.Join(links, ", "))
}

// keysetCursor is the opaque cursor of GitLab's cursor-based keyset pager.
type keysetCursor struct {
	ID string `json:"id"`
	KD string `json:"_kd"`
}

func encodeCursor(id int64) string {
	b, _ := json.Marshal(keysetCursor{ID: strconv.FormatInt(id, 10), KD: "n"})
	return base64.URLEncoding.EncodeToString(b)
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.URLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	var k keysetCursor
	if json.Unmarshal(b, &k) != nil {
		return 0, false
	}
	id, err := strconv.ParseInt(k.ID, 10, 64)
	return id, err == nil
}

// handleJobs answers GET /projects/:id/jobs.
func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request, id string) {
	c, p, ok := s.access(w, r, id, false, true)
	if !ok {
		return
	}
	if s.rateLimited(w, c.token) {
		return
	}
	q := r.URL.Query()
	scopes := append(q["scope"], q["scope[]"]...)
	for _, sc := range scopes {
		if !slices.Contains(validScopes, sc) {
			errBadScope.write(w)
			return
		}
	}
	pg, aerr := parsePage(q)
	if aerr != nil {
		aerr.write(w)
		return
	}
	keyset := q.Get("pagination") == "keyset"
	if keyset {
		if ob := q.Get("order_by"); ob != "" && ob != "id" {
			errKeysetOrder.write(w)
			return
		}
		if so := q.Get("sort"); so != "" && so != "desc" {
			errKeysetOrder.write(w)
			return
		}
	}

	s.mu.Lock()
	jobs := make([]*jobRec, 0, len(p.jobs))
	for _, j := range p.jobs {
		if len(scopes) == 0 || slices.Contains(scopes, j.Status) {
			jobs = append(jobs, j)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(jobs, func(a, b *jobRec) int { return cmp.Compare(b.ID, a.ID) })

	var page []*jobRec
	if keyset {
		if cur := q.Get("cursor"); cur != "" {
			after, ok := decodeCursor(cur)
			if !ok {
				paramInvalid("cursor").write(w)
				return
			}
			i, _ := slices.BinarySearchFunc(jobs, after, func(j *jobRec, id int64) int { return cmp.Compare(id, j.ID) })
			if i < len(jobs) && jobs[i].ID == after {
				i++
			}
			jobs = jobs[i:]
		}
		page = jobs[:min(pg.perPage, len(jobs))]
		if len(jobs) > pg.perPage {
			nq := r.URL.Query()
			nq.Del("page")
			nq.Set("cursor", encodeCursor(page[len(page)-1].ID))
			w.Header().Set("Link", "<"+s.apiURL+r.URL.EscapedPath()+"?"+nq.Encode()+`>; rel="next"`)
		}
	} else {
		page = pageSlice(jobs, pg)
		s.setOffsetHeaders(w, r, pg, len(page) > 0, pg.offset()+pg.perPage < len(jobs))
	}
	out := make([]map[string]any, 0, len(page))
	for _, j := range page {
		v, err := s.jobJSON(j)
		if err != nil {
			errInternal.write(w)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// rateLimited applies the jobs_index limit per token (fixed one-minute
// windows on the injected clock) and writes the 429 when exceeded.
func (s *Server) rateLimited(w http.ResponseWriter, token string) bool {
	limit := s.opts.JobsPerMinute
	if limit <= 0 {
		return false
	}
	now := s.now()
	s.mu.Lock()
	win := s.rate[token]
	if win == nil || now.Sub(win.start) >= time.Minute {
		win = &rateWindow{start: now}
		s.rate[token] = win
	}
	win.count++
	count, reset := win.count, win.start.Add(time.Minute)
	s.mu.Unlock()
	if count <= limit {
		return false
	}
	retry := int((reset.Sub(now) + time.Second - 1) / time.Second)
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(max(retry, 1)))
	h.Set("RateLimit-Name", "jobs_index")
	h.Set("RateLimit-Limit", strconv.Itoa(limit))
	h.Set("RateLimit-Observed", strconv.Itoa(count))
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
	errRateLimited.write(w)
	return true
}

// Job JSON entities (reference §3.5).
type artifactJSON struct {
	FileType   string `json:"file_type"`
	Size       int64  `json:"size"`
	Filename   string `json:"filename"`
	FileFormat string `json:"file_format"`
}

type artifactsFileJSON struct {
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
}

func sha(pipelineID int64) string {
	sum := sha1.Sum([]byte(fmt.Sprintf("pipeline-%d", pipelineID)))
	return hex.EncodeToString(sum[:])
}

// jobJSON renders a job like GitLab's Job entity. It materialises the
// archive when needed, because "size" must be the real zip size.
func (s *Server) jobJSON(j *jobRec) (map[string]any, error) {
	var started, finished time.Time
	switch j.Status {
	case "created", "pending", "waiting_for_resource", "preparing", "manual", "scheduled", "skipped":
	default:
		started = j.CreatedAt.Add(5 * time.Second)
		finished = j.FinishedAt
	}
	var duration, queued any
	if !started.IsZero() {
		queued = 5.0
		end := finished
		if end.IsZero() {
			end = s.now()
		}
		duration = end.Sub(started).Seconds()
	}
	commitSHA := sha(j.PipelineID)
	arts := []artifactJSON{}
	var artsFile *artifactsFileJSON
	var expireAt *string
	if hasArchive(&j.Job) {
		a, err := s.archiveFor(j)
		if err != nil {
			return nil, err
		}
		arts = append(arts,
			artifactJSON{"archive", a.size, "artifacts.zip", "zip"},
			artifactJSON{"metadata", a.metadataSize(), "metadata.gz", "gzip"})
		artsFile = &artifactsFileJSON{Filename: "artifacts.zip", Size: a.size}
		expireAt = fmtTimePtr(j.CreatedAt.Add(30 * 24 * time.Hour))
	} else if len(j.Artifacts) > 0 {
		expireAt = fmtTimePtr(s.now().Add(-24 * time.Hour))
	}
	if !started.IsZero() {
		arts = append(arts, artifactJSON{"trace", 1500 + j.ID%997, "job.log", "raw"})
	}
	created := fmtTime(j.CreatedAt)
	v := map[string]any{
		"id":              j.ID,
		"status":          j.Status,
		"stage":           j.Stage,
		"name":            j.Name,
		"ref":             j.Ref,
		"tag":             false,
		"coverage":        nil,
		"allow_failure":   false,
		"created_at":      created,
		"started_at":      fmtTimePtr(started),
		"finished_at":     fmtTimePtr(finished),
		"erased_at":       nil,
		"duration":        duration,
		"queued_duration": queued,
		"user":            s.userJSON(),
		"commit": map[string]any{
			"id": commitSHA, "short_id": commitSHA[:8], "title": "Build " + j.Name, "message": "Build " + j.Name + "\n",
			"author_name": "GitLab Emulator", "author_email": "emulator@example.com", "created_at": created,
		},
		"pipeline": map[string]any{
			"id": j.PipelineID, "iid": j.PipelineID, "project_id": j.project.ID, "ref": j.Ref, "sha": commitSHA,
			"status": j.Status, "source": "push", "created_at": created, "updated_at": created,
			"web_url": fmt.Sprintf("%s/%s/-/pipelines/%d", s.apiURL, j.project.Path, j.PipelineID),
		},
		"web_url":             fmt.Sprintf("%s/%s/-/jobs/%d", s.apiURL, j.project.Path, j.ID),
		"project":             map[string]any{"ci_job_token_scope_enabled": false},
		"artifacts":           arts,
		"artifacts_expire_at": expireAt,
		"archived":            false,
		"tag_list":            []string{},
		"runner":              nil,
		"runner_manager":      nil,
	}
	if j.Status == "failed" {
		v["failure_reason"] = "script_failure"
	}
	if artsFile != nil {
		v["artifacts_file"] = artsFile
	}
	return v, nil
}

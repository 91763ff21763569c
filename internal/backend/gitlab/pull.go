package gitlab

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/progress"
	"github.com/sregistry/sregistry/internal/transfer"
)

// pullJob is the resolved job of a pull.
type pullJob struct {
	project   string // path with namespace
	projectID int64  // 0 when unknown (job tokens cannot read projects)
	id        int64
	name      string
	ref       string
	verified  bool // details come from the API (not from the pull string)
}

// pidString is the :id used in API URLs: the numeric id when known.
func (j *pullJob) pidString() string {
	if j.projectID > 0 {
		return strconv.FormatInt(j.projectID, 10)
	}
	return j.project
}

// puller carries one pull's state.
type puller struct {
	b     *Backend
	req   backend.PullRequest
	logf  func(string, ...any)
	ref   pullRef
	job   pullJob
	tag   string // tag given in the pull string, "" when none
	conns int
	temps []string // files to remove on failure
}

// Pull downloads one image out of a job's artifacts archive.
//
// The catalog name is the project path (collection = every segment but the
// last, image = the last) with the tag; the job id and job name are kept in
// PullInfo only (the original leaked them into the name as
// "122059246,group/proj,build").
//
// The image is fetched as a byte range of the whole-archive endpoint (which
// GitLab redirects to object storage), located through the zip central
// directory, so the download is parallel, resumable across runs and checked
// against the zip CRC-32. Servers that do not honour Range get the
// single-file endpoint instead (streamed, restarted on failure).
func (b *Backend) Pull(ctx context.Context, req backend.PullRequest) (_ *backend.PullResult, err error) {
	if req.Dir == nil {
		return nil, errors.New("gitlab pull: no destination directory (PullRequest.Dir is nil)")
	}
	ref, err := parsePullRef(req.Ref)
	if err != nil {
		return nil, err
	}
	p := &puller{b: b, req: req, logf: logf(req.Logf), ref: ref, tag: ref.Tag, conns: req.Connections}
	if p.conns <= 0 {
		p.conns = b.connections
	}
	defer func() {
		if err != nil {
			for _, t := range p.temps {
				os.Remove(t)
			}
		}
	}()
	if err := p.resolveJob(ctx); err != nil {
		return nil, err
	}
	return p.download(ctx)
}

// jobName is the job name to look for: --job, then the pull string, then SREGISTRY_GITLAB_JOB.
func (p *puller) jobName() string {
	switch {
	case p.req.Job != "":
		return p.req.Job
	case p.ref.JobName != "":
		return p.ref.JobName
	}
	return p.b.job
}

// resolveJob finds the project and the job (by id, or the latest successful
// job with that name on the ref).
func (p *puller) resolveJob(ctx context.Context) error {
	b := p.b
	p.job = pullJob{project: p.ref.Project, id: p.ref.JobID, name: p.jobName()}
	if b.tokenType == TokenJob && b.token != "" {
		// Job tokens reach only the artifacts endpoints.
		if p.ref.JobID == 0 {
			return fmt.Errorf("pull %s: finding the latest job needs the jobs list, which a job token (CI_JOB_TOKEN) cannot read: pull by job id (<job_id>,%s) or use a personal or project access token", p.req.Ref, p.ref.Project)
		}
		return nil
	}
	proj, err := b.getProject(ctx, p.ref.Project)
	if err != nil {
		return fmt.Errorf("pull %s: %w", p.req.Ref, err)
	}
	p.job.project, p.job.projectID = proj.PathWithNamespace, proj.ID
	if p.job.project == "" {
		p.job.project = p.ref.Project
	}

	if p.ref.JobID > 0 {
		j, err := b.getJob(ctx, p.job.pidString(), p.ref.JobID)
		if err != nil {
			if b.token == "" && statusOf(err) == http.StatusUnauthorized {
				// Some instances hide job details from anonymous users but
				// still serve public artifacts: go on unverified.
				b.cfg.Debugf("gitlab: job %d details need a token; trying its artifacts anonymously", p.ref.JobID)
				return nil
			}
			return fmt.Errorf("pull %s: %w", p.req.Ref, err)
		}
		p.job.verified = true
		p.job.ref = j.Ref
		want := p.jobName()
		if (p.req.Job != "" || p.ref.JobName != "") && j.Name != want {
			p.logf("WARNING job %d is named %q, not %q; pulling it anyway", j.ID, j.Name, want)
		}
		p.job.name = j.Name
		if j.Status != "" && j.Status != "success" {
			p.logf("WARNING job %d of %s has status %q", j.ID, p.job.project, j.Status)
		}
		if archiveOf(j) == nil {
			return p.expiredErr()
		}
		return nil
	}

	if b.token == "" {
		return fmt.Errorf("pull %s: finding the latest %q job needs the jobs list, which GitLab shows only to authenticated users: pull by job id (<job_id>,%s) or %w",
			p.req.Ref, p.jobName(), p.job.project, errNoToken)
	}
	want := p.jobName()
	pager := b.newJobPager(p.job.pidString())
	scanned := 0
	for {
		jobs, err := pager.Next(ctx)
		if err != nil {
			return fmt.Errorf("pull %s: %w", p.req.Ref, err)
		}
		if jobs == nil {
			break
		}
		for _, j := range jobs {
			scanned++
			if j.Name != want || (p.ref.GitRef != "" && j.Ref != p.ref.GitRef) || archiveOf(j) == nil {
				continue
			}
			if j.Status != "" && j.Status != "success" {
				continue
			}
			p.job.id, p.job.name, p.job.ref, p.job.verified = j.ID, j.Name, j.Ref, true
			b.cfg.Debugf("gitlab: latest %q job of %s: %d (ref %s), found after %d jobs and %d requests", want, p.job.project, j.ID, j.Ref, scanned, pager.Requests)
			return nil
		}
	}
	onRef := ""
	if p.ref.GitRef != "" {
		onRef = " on ref " + p.ref.GitRef
	}
	return fmt.Errorf("pull %s: no successful job named %q with artifacts%s in %s (%d jobs checked): list the jobs with `sregistry search gitlab://%s` and pull by job id, or set the job name with --job",
		p.req.Ref, want, onRef, p.job.project, scanned, p.job.project)
}

func (p *puller) expiredErr() error {
	return fmt.Errorf("pull %s: artifacts of job %d have expired or were deleted (GitLab answered 404): pick a newer job with `sregistry search gitlab://%s`",
		p.req.Ref, p.job.id, p.job.project)
}

// apiURL joins path segments under the API base.
func (p *puller) archiveURL() string {
	return fmt.Sprintf("%s/projects/%s/jobs/%d/artifacts", p.b.apiBase, escapeProject(p.job.pidString()), p.job.id)
}

// fileURL is the single-file endpoint of an artifact (segments escaped, '/' kept).
func (p *puller) fileURL(artifact string) string {
	return p.archiveURL() + "/" + escapeArtifactPath(artifact)
}

// tagFor returns the tag of the catalog name for the chosen artifact.
func (p *puller) tagFor(artifact string) string {
	if p.tag != "" {
		return p.tag
	}
	if p.req.Artifact != "" {
		return names.TagFromArtifact(artifact)
	}
	return "latest"
}

// selectionTag is the tag used to derive candidate artifact paths.
func (p *puller) selectionTag() string {
	if p.tag != "" {
		return p.tag
	}
	return "latest"
}

func (p *puller) candidates() []string {
	if p.req.Artifact != "" {
		return []string{normArtifactPath(p.req.Artifact)}
	}
	return candidatesFor(p.b.folder, p.selectionTag())
}

func (p *puller) lookingFor(c []string) {
	what := c[0]
	if len(c) > 1 {
		what += " (or " + strings.Join(c[1:], ", ") + ")"
	}
	p.logf("Looking for artifact %s in job %d (%s) of %s", what, p.job.id, p.job.name, p.job.project)
}

// download opens the archive and extracts the image by range, or falls back
// to the single-file endpoint.
func (p *puller) download(ctx context.Context) (*backend.PullResult, error) {
	cands := p.candidates()
	p.lookingFor(cands)
	obj, err := p.b.dl.Open(ctx, transfer.Remote{URL: p.archiveURL()})
	if err != nil {
		var he *transfer.HTTPError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			p.b.cfg.Debugf("gitlab: archive of job %d: HTTP 404 (%s); trying the single-file endpoint", p.job.id, he.Message)
			return p.singleFile(ctx, cands)
		}
		return nil, p.transferErr(err, "open the artifacts archive")
	}
	if !obj.RangeSupported() || obj.Size() <= 0 {
		p.b.cfg.Debugf("gitlab: archive of job %d does not support Range; using the single-file endpoint", p.job.id)
		return p.singleFile(ctx, cands)
	}
	zr, err := zip.NewReader(obj, obj.Size())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.b.cfg.Debugf("gitlab: read the zip directory of job %d: %v; using the single-file endpoint", p.job.id, err)
		return p.singleFile(ctx, cands)
	}
	files, paths := zipEntries(zr)
	ch, ok := chooseArtifact(paths, p.req.Artifact, cands, p.b.folder, p.selectionTag() == "latest" && p.req.Artifact == "")
	if !ok {
		return nil, fmt.Errorf("pull %s: %w", p.req.Ref, notFoundErr(p.job.id, p.job.project, cands, imagesIn(paths), true))
	}
	if ch.Only {
		p.logf("No %s in job %d; using the only image in %s/: %s", strings.Join(cands, " or "), p.job.id, p.b.folder, ch.Path)
	}
	return p.fetchEntry(ctx, obj, files[ch.Path], ch.Path)
}

// fetchEntry downloads one zip entry by range and verifies it.
func (p *puller) fetchEntry(ctx context.Context, obj *transfer.Object, f *zip.File, artifact string) (*backend.PullResult, error) {
	b := p.b
	if f.Flags&0x1 != 0 {
		return nil, fmt.Errorf("pull %s: %s is encrypted in the artifacts archive; it cannot be pulled", p.req.Ref, artifact)
	}
	off, err := f.DataOffset() // reads the entry's local header (one small ranged GET)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pull %s: read the zip header of %s: %w", p.req.Ref, artifact, err)
	}
	name, info, dir, err := p.prepare(ctx, artifact)
	if err != nil {
		return nil, err
	}
	key := strings.Join([]string{"gitlab", b.baseStr, p.job.pidString(), strconv.FormatInt(p.job.id, 10), artifact}, "|")
	fo := transfer.FetchOptions{
		Offset:      off,
		Length:      int64(f.CompressedSize64),
		Dir:         dir,
		Key:         key,
		Connections: p.conns,
		Progress:    p.reporter(),
		Name:        path.Base(artifact),
	}
	switch f.Method {
	case zip.Store:
		fo.ExpectedSize = int64(f.UncompressedSize64)
		p.logf("Downloading %s (%s) from job %d", artifact, progress.FormatBytes(int64(f.UncompressedSize64)), p.job.id)
		res, err := b.dl.Fetch(ctx, obj, fo)
		if err != nil {
			return nil, p.transferErr(err, "download "+artifact)
		}
		if res.CRC32 != f.CRC32 {
			os.Remove(res.Path)
			res.Release()
			return nil, fmt.Errorf("pull %s: %s is corrupt (CRC-32 %08x, the archive says %08x); the partial download was removed: run the pull again", p.req.Ref, artifact, res.CRC32, f.CRC32)
		}
		p.temps = append(p.temps, res.Path)
		return p.result(name, info, res.Path, res.Size, res.SHA256, res.Release), nil
	case zip.Deflate:
		fo.ExpectedSize = int64(f.CompressedSize64)
		p.logf("Downloading %s (%s compressed, %s) from job %d", artifact, progress.FormatBytes(int64(f.CompressedSize64)), progress.FormatBytes(int64(f.UncompressedSize64)), p.job.id)
		res, err := b.dl.Fetch(ctx, obj, fo)
		if err != nil {
			return nil, p.transferErr(err, "download "+artifact)
		}
		inf, ierr := inflate(res.Path, dir, int64(f.UncompressedSize64))
		os.Remove(res.Path)
		res.Release()
		if ierr != nil {
			return nil, fmt.Errorf("pull %s: %w: run the pull again", p.req.Ref, ierr)
		}
		p.temps = append(p.temps, inf.Path)
		if inf.CRC32 != f.CRC32 || uint64(inf.Size) != f.UncompressedSize64 {
			return nil, fmt.Errorf("pull %s: %s is corrupt after decompression (CRC-32 %08x, %d bytes; the archive says %08x, %d bytes): run the pull again",
				p.req.Ref, artifact, inf.CRC32, inf.Size, f.CRC32, f.UncompressedSize64)
		}
		return p.result(name, info, inf.Path, inf.Size, inf.SHA256, func() {}), nil
	default:
		return nil, fmt.Errorf("pull %s: %s uses zip compression method %d, which sregistry cannot read: store images uncompressed (artifacts are zipped as they are)", p.req.Ref, artifact, f.Method)
	}
}

// singleFile fetches the artifact through GET .../artifacts/<path>, which
// GitLab streams without Range support (no resume; a cut restarts it).
func (p *puller) singleFile(ctx context.Context, cands []string) (*backend.PullResult, error) {
	b := p.b
	tried := cands
	var images []string
	known := false
	sizes := map[string]int64{}
	if entries, err := b.listTree(ctx, p.job.pidString(), p.job.id); err == nil {
		known = true
		paths := make([]string, 0, len(entries))
		for _, e := range entries {
			paths = append(paths, e.Path)
			sizes[normArtifactPath(e.Path)] = e.Size
		}
		images = imagesIn(paths)
		ch, ok := chooseArtifact(paths, p.req.Artifact, cands, b.folder, p.selectionTag() == "latest" && p.req.Artifact == "")
		if !ok {
			if len(entries) == 0 {
				return nil, p.expiredErr()
			}
			return nil, fmt.Errorf("pull %s: %w", p.req.Ref, notFoundErr(p.job.id, p.job.project, cands, images, true))
		}
		if ch.Only {
			p.logf("No %s in job %d; using the only image in %s/: %s", strings.Join(cands, " or "), p.job.id, b.folder, ch.Path)
		}
		tried = []string{ch.Path}
	} else if ctx.Err() != nil {
		return nil, ctx.Err()
	} else if !errors.Is(err, errNoTreeAPI) {
		if statusOf(err) == http.StatusNotFound {
			return nil, p.expiredErr()
		}
		b.cfg.Debugf("gitlab: list files of job %d: %v", p.job.id, err)
	}
	for _, artifact := range tried {
		obj, err := b.dl.Open(ctx, transfer.Remote{URL: p.fileURL(artifact)})
		if err != nil {
			var he *transfer.HTTPError
			if errors.As(err, &he) && he.Status == http.StatusNotFound {
				switch classify404(he.Message) {
				case gone404:
					return nil, p.expiredErr()
				case job404:
					return nil, fmt.Errorf("pull %s: job %d not found in %s (GitLab answered 404): check the job id with `sregistry search gitlab://%s`", p.req.Ref, p.job.id, p.job.project, p.job.project)
				case project404:
					return nil, fmt.Errorf("pull %s: %s", p.req.Ref, b.projectNotFound(p.job.project))
				}
				b.cfg.Debugf("gitlab: %s not in job %d", artifact, p.job.id)
				continue
			}
			return nil, p.transferErr(err, "open "+artifact)
		}
		name, info, dir, err := p.prepare(ctx, artifact)
		if err != nil {
			return nil, err
		}
		expected := int64(-1)
		if s, ok := sizes[artifact]; ok && s > 0 {
			expected = s
		}
		p.logf("Downloading %s from job %d (single-file endpoint: no resume)", artifact, p.job.id)
		res, err := b.dl.Fetch(ctx, obj, transfer.FetchOptions{
			Length:       -1,
			Name:         path.Base(artifact),
			Dir:          dir,
			Connections:  1,
			Progress:     p.reporter(),
			ExpectedSize: expected,
		})
		if err != nil {
			return nil, p.transferErr(err, "download "+artifact)
		}
		p.temps = append(p.temps, res.Path)
		return p.result(name, info, res.Path, res.Size, res.SHA256, res.Release), nil
	}
	return nil, fmt.Errorf("pull %s: %w", p.req.Ref, notFoundErr(p.job.id, p.job.project, tried, images, known))
}

// Kinds of 404 on the artifact endpoints, told apart by GitLab's body.
const (
	entry404   = iota // the entry is not in the archive (Workhorse's plain "404 page not found")
	gone404           // no artifacts: expired or erased ({"message":"404 Not Found"} and variants)
	job404            // no such job ({"message":"404 Not found"})
	project404        // no such project ({"message":"404 Project Not Found"})
)

func classify404(msg string) int {
	m := strings.TrimSpace(msg)
	switch {
	case m == "404 Not found":
		return job404
	case strings.Contains(m, "Project Not Found"):
		return project404
	case strings.HasPrefix(m, "404 ") && !strings.Contains(strings.ToLower(m), "page not found") && !strings.Contains(strings.ToLower(m), "file not found"):
		return gone404
	}
	return entry404
}

// prepare resolves the catalog name, runs the Check hook and returns the
// destination directory.
func (p *puller) prepare(ctx context.Context, artifact string) (names.Name, backend.PullInfo, string, error) {
	tag := p.tagFor(artifact)
	name, err := names.Parse(p.job.project + ":" + tag)
	if err != nil {
		return names.Name{}, backend.PullInfo{}, "", fmt.Errorf("pull %s: %q does not make a valid image name: %w", p.req.Ref, p.job.project+":"+tag, err)
	}
	name.Version = ""
	info := backend.PullInfo{
		Backend:      Name,
		Base:         p.b.baseStr,
		Project:      p.job.project,
		ProjectID:    p.job.projectID,
		JobID:        p.job.id,
		JobName:      p.job.name,
		Ref:          p.job.ref,
		ArtifactPath: artifact,
		SourceURL:    p.fileURL(artifact),
	}
	if p.req.Check != nil {
		if err := p.req.Check(name, info); err != nil {
			return names.Name{}, backend.PullInfo{}, "", err
		}
	}
	if err := ctx.Err(); err != nil {
		return names.Name{}, backend.PullInfo{}, "", err
	}
	dir, err := p.req.Dir(name)
	if err != nil {
		return names.Name{}, backend.PullInfo{}, "", fmt.Errorf("pull %s: %w", p.req.Ref, err)
	}
	return name, info, dir, nil
}

func (p *puller) result(name names.Name, info backend.PullInfo, path string, size int64, sum string, release func()) *backend.PullResult {
	info.Size, info.SHA256, info.PulledAt = size, sum, p.b.cfg.Now().UTC()
	if release == nil {
		release = func() {}
	}
	return &backend.PullResult{Name: name, Path: path, Size: size, SHA256: sum, Info: info, Release: release}
}

// transferErr words a download error.
func (p *puller) transferErr(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var he *transfer.HTTPError
	if errors.As(err, &he) {
		switch he.Status {
		case http.StatusNotFound:
			return p.expiredErr()
		case http.StatusUnauthorized, http.StatusForbidden:
			body := fmt.Sprintf(`{"message":%q}`, he.Message)
			return fmt.Errorf("pull %s: %s: %w", p.req.Ref, what, p.b.statusErr(he.Status, []byte(body), "", err))
		}
		return fmt.Errorf("pull %s: %s: HTTP %d from %s%s: try again later", p.req.Ref, what, he.Status, hostOf(he.URL), suffix(he.Message))
	}
	return fmt.Errorf("pull %s: %s: %w", p.req.Ref, what, err)
}

func hostOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

// reporter returns the request's progress reporter or a no-op one.
func (p *puller) reporter() progress.Reporter {
	if p.req.Progress != nil {
		return p.req.Progress
	}
	return progress.Discard()
}

package gitlab

import (
	"context"
	"fmt"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/gitlabemu"
)

// scaleProject fills the emulator with n jobs: names build/test/deploy, refs
// main/dev/feature-a..c (15 name/ref pairs), one job in ten failed, one in thirteen without
// artifacts, and a single successful "build" job on ref "v1.0" at index
// n*2/5 (deep in the list). Artifacts are tiny so the emulator's archive
// builds stay cheap. It returns the ids of successful jobs, newest first,
// and the id of the v1.0 job.
func scaleProject(e *emuEnv, project string, n int) (successful []int64, releaseID int64) {
	names := []string{"build", "test", "deploy"}
	refs := []string{"main", "main", "main", "dev", "feature-a", "feature-b", "feature-c"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		j := gitlabemu.Job{Name: names[i%3], Ref: refs[i%7], CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
		if i%10 == 9 {
			j.Status = "failed"
		}
		if i%13 != 0 {
			j.Artifacts = []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte(fmt.Sprintf("image %d", i))}}
		}
		if i == n*2/5 {
			j.Name, j.Ref, j.Status = "build", "v1.0", "success"
			j.Artifacts = []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("release")}}
		}
		got := e.srv.AddJob(project, j)
		if got.Status == "success" {
			successful = append(successful, got.ID)
		}
		if i == n*2/5 {
			releaseID = got.ID
		}
	}
	slices.Reverse(successful)
	return successful, releaseID
}

// raceBuild reports whether the test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

type apiCounts struct {
	jobsLists, tree, other int
	badList                []string // jobs-list requests without keyset/per_page=100
}

func countAPI(reqs []gitlabemu.Request) apiCounts {
	var c apiCounts
	for _, r := range reqs {
		if r.Listener != gitlabemu.ListenerAPI {
			continue
		}
		u, err := url.Parse(r.URL)
		if err != nil {
			c.other++
			continue
		}
		switch {
		case strings.HasSuffix(u.Path, "/jobs"):
			c.jobsLists++
			q := u.Query()
			if q.Get("pagination") != "keyset" || q.Get("per_page") != "100" || q.Get("order_by") != "id" || q.Get("sort") != "desc" {
				c.badList = append(c.badList, r.URL)
			}
		case strings.HasSuffix(u.Path, "/artifacts/tree"):
			c.tree++
		default:
			c.other++
		}
	}
	return c
}

// TestSearchScale5000Jobs searches a project of 5,000 jobs (2,500 under
// -race, 1,000 with -short) through the
// emulator: a full --latest scan reads every page with keyset pagination and
// per_page=100 (at most 51 list requests); --latest --job --ref stops at the
// first page holding a match.
func TestSearchScale5000Jobs(t *testing.T) {
	n := 5000
	switch {
	case testing.Short():
		n = 1000
	case raceBuild():
		// The emulator materialises every job's archive for the job JSON;
		// 5,000 of them take ~10 s under the race detector on 2 cores.
		n = 2500
	}
	e := startEmu(t, gitlabemu.Options{TreeAPI: true})
	const project = "scale/sub/proj"
	begin := time.Now()
	successful, releaseID := scaleProject(e, project, n)
	t.Logf("added %d jobs (%d successful) in %v", n, len(successful), time.Since(begin).Round(time.Millisecond))
	b := e.backendWith(map[string]string{}, nil)
	b.cfg.Debugf = func(string, ...any) {}
	pages := (len(successful) + 99) / 100
	releasePage := slices.Index(successful, releaseID)/100 + 1

	tests := []struct {
		name     string
		q        backend.SearchQuery
		wantList int
		wantIDs  []int64 // nil = do not check
		minRes   int
	}{
		// The first run also makes the emulator build every job's archive
		// (it reports exact archive sizes); it is timed separately.
		{name: "latest, cold emulator", q: backend.SearchQuery{Query: project, Latest: true}, wantList: pages, minRes: 16},
		// Without --latest only the MaxImageListings newest results get a tree request.
		{name: "all jobs", q: backend.SearchQuery{Query: project}, wantList: pages},
		{name: "latest --ref dev", q: backend.SearchQuery{Query: project, Latest: true, Ref: "dev"}, wantList: pages, minRes: 3},
		{name: "latest --job build --ref main", q: backend.SearchQuery{Query: project, Latest: true, Job: "build", Ref: "main"}, wantList: 1, minRes: 1},
		{name: "latest --job build --ref v1.0 (deep)", q: backend.SearchQuery{Query: project, Latest: true, Job: "build", Ref: "v1.0"}, wantList: releasePage, wantIDs: []int64{releaseID}},
		{name: "limit 5", q: backend.SearchQuery{Query: project, Limit: 5}, wantList: 1, minRes: 5},
	}
	for _, tc := range tests {
		e.srv.ResetRequests()
		begin := time.Now()
		res, err := b.Search(context.Background(), tc.q)
		d := time.Since(begin)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := countAPI(e.srv.Requests())
		t.Logf("%-40s %4d results  %3d jobs-list + %3d tree + %d other API requests  %v",
			tc.name, len(res), c.jobsLists, c.tree, c.other, d.Round(time.Millisecond))
		if c.jobsLists != tc.wantList {
			t.Errorf("%s: %d jobs-list requests, want %d", tc.name, c.jobsLists, tc.wantList)
		}
		if c.tree > MaxImageListings {
			t.Errorf("%s: %d tree requests, want at most %d", tc.name, c.tree, MaxImageListings)
		}
		if c.jobsLists > 51 {
			t.Errorf("%s: %d jobs-list requests for %d jobs: more than 51", tc.name, c.jobsLists, n)
		}
		if len(c.badList) > 0 {
			t.Errorf("%s: jobs-list requests without keyset pagination / per_page=100: %v", tc.name, c.badList[:1])
		}
		if len(res) < tc.minRes {
			t.Errorf("%s: %d results, want >= %d", tc.name, len(res), tc.minRes)
		}
		if tc.wantIDs != nil {
			var ids []int64
			for _, r := range res {
				ids = append(ids, r.JobID)
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("%s: ids %v, want %v", tc.name, ids, tc.wantIDs)
			}
		}
		if tc.q.Latest {
			seen := map[string]bool{}
			for _, r := range res {
				k := r.JobName + "\x00" + r.Ref
				if seen[k] {
					t.Errorf("%s: two results for %s on %s", tc.name, r.JobName, r.Ref)
				}
				seen[k] = true
			}
		}
		if tc.q.Job == "" && tc.q.Ref == "" && !tc.q.Latest && tc.q.Limit == 0 {
			// every successful job with artifacts
			want := 0
			for _, id := range successful {
				if (id-1001)%13 != 0 || id == releaseID {
					want++
				}
			}
			if len(res) != want {
				t.Errorf("%s: %d results, want %d", tc.name, len(res), want)
			}
		}
	}
}

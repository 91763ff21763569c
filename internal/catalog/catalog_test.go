package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The DDL sregistry-cli 0.2.39 (SQLAlchemy) created, verbatim from the brief.
const (
	pyCollectionDDL = `CREATE TABLE collection (id INTEGER NOT NULL, name VARCHAR(150), token VARCHAR(50), created_at DATETIME, PRIMARY KEY (id), UNIQUE (name))`
	pyContainerDDL  = `CREATE TABLE container (id INTEGER NOT NULL, created_at DATETIME, metrics TEXT NOT NULL, name VARCHAR(250) NOT NULL, tag VARCHAR(250) NOT NULL, image VARCHAR(250), url VARCHAR(500), uri VARCHAR(500), client VARCHAR(50) NOT NULL, version VARCHAR(250), collection_id INTEGER NOT NULL, PRIMARY KEY (id), CONSTRAINT _container_uc UNIQUE (collection_id, name, tag, client, version), FOREIGN KEY(collection_id) REFERENCES collection (id))`
)

const (
	shaOld = "a0e5064d0000000000000000000000000000000000000000000000000000a133"
	shaNew = "5891be0300000000000000000000000000000000000000000000000000000b03"
)

// pyMetrics is the metrics JSON the Python tool stored (json.dumps layout).
func pyMetrics() string {
	return `{"collection": "122059246,singularityhub", "image": "gitlab-ci", "original": "122059246,singularityhub/gitlab-ci", "registry": null, "storage": "122059246,singularityhub/gitlab-ci:latest.sif", "tag": "latest", "type": "container", "uri": "122059246,singularityhub/gitlab-ci:latest", "url": "122059246,singularityhub/gitlab-ci", "version": null}`
}

// pythonFixture writes a catalog the way sregistry-cli 0.2.39 did: its DDL,
// rollback journal, created_at without microseconds, two versions of one tag.
func pythonFixture(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sregistry.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		pyCollectionDDL,
		pyContainerDDL,
		`INSERT INTO collection (id, name, token, created_at) VALUES (1, '122059246,singularityhub', 'd3b07384-d113-4ec6-a3ad-123456789abc', '2026-11-24 10:00:00')`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for i, v := range []struct{ sha, at string }{{shaOld, "2026-11-24 10:00:01"}, {shaNew, "2026-11-25 09:30:00"}} {
		dir := "/home/u/.singularity/shub/122059246,singularityhub/gitlab-ci/"
		_, err := db.Exec(`INSERT INTO container (id, created_at, metrics, name, tag, image, url, uri, client, version, collection_id)
			VALUES (?, ?, ?, 'gitlab-ci', 'latest', ?, ?, ?, 'gitlab', ?, 1)`,
			i+1, v.at, pyMetrics(), dir+"latest@"+v.sha+".sif",
			"https://gitlab.com/singularityhub/gitlab-ci/-/jobs/122059246/artifacts/raw/build/Singularity.simg",
			"122059246,singularityhub/gitlab-ci:latest@"+v.sha, v.sha)
		if err != nil {
			t.Fatal(err)
		}
	}
	return path
}

type columnInfo struct {
	CID     int
	Name    string
	Type    string
	NotNull int
	Default sql.NullString
	PK      int
}

func tableShape(t testing.TB, path string) map[string][]columnInfo {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	shape := map[string][]columnInfo{}
	for _, table := range []string{"collection", "container"} {
		rows, err := db.Query("PRAGMA table_info(" + table + ")")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c columnInfo
			if err := rows.Scan(&c.CID, &c.Name, &c.Type, &c.NotNull, &c.Default, &c.PK); err != nil {
				t.Fatal(err)
			}
			shape[table] = append(shape[table], c)
		}
		rows.Close()
	}
	return shape
}

func originalDDL(t testing.TB, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	rows, err := db.Query("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('collection', 'container')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	return out
}

func open(t testing.TB, path string) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPythonCatalogInPlace(t *testing.T) {
	ctx := context.Background()
	path := pythonFixture(t)
	shapeBefore := tableShape(t, path)
	ddlBefore := originalDDL(t, path)

	c := open(t, path)

	all, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Version != shaOld || all[1].Version != shaNew {
		t.Fatalf("List = %+v, want the two fixture rows in insertion order", all)
	}
	first := all[0]
	if first.Collection != "122059246,singularityhub" || first.Client != "gitlab" || first.CollectionID != 1 {
		t.Errorf("row 1 = %+v", first)
	}
	if want := time.Date(2026, 11, 24, 10, 0, 1, 0, time.UTC); !first.CreatedAt.Equal(want) {
		t.Errorf("created_at = %v, want %v", first.CreatedAt, want)
	}
	var m map[string]any
	if err := json.Unmarshal(first.Metrics, &m); err != nil || m["type"] != "container" {
		t.Errorf("metrics = %s (%v)", first.Metrics, err)
	}
	if first.Pull != nil {
		t.Errorf("a Python row has pull metadata %s", first.Pull)
	}

	// Get returns the newest version (the original returned the oldest).
	got, err := c.Get(ctx, Query{Collection: "122059246,singularityhub", Name: "gitlab-ci", Tag: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != shaNew {
		t.Errorf("Get = version %s, want the newest %s", got.Version, shaNew)
	}
	got, err = c.Get(ctx, Query{Collection: "122059246,singularityhub", Name: "gitlab-ci", Tag: "latest", Version: shaOld})
	if err != nil || got.ID != 1 {
		t.Errorf("Get exact version = %+v, %v", got, err)
	}

	// Upsert of an existing version updates it in place and merges metrics.
	up, isNew, err := c.Upsert(ctx, Container{
		Collection: "122059246,singularityhub", Name: "gitlab-ci", Tag: "latest", Version: shaOld,
		Client: "gitlab", Image: "/new/place.sif", Metrics: json.RawMessage(`{"version": "` + shaOld + `", "size": 42}`),
		Pull: json.RawMessage(`{"job_id": 122059246}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if isNew || up.ID != 1 || up.Image != "/new/place.sif" {
		t.Errorf("Upsert existing = %+v new=%v, want an update of row 1", up, isNew)
	}
	if err := json.Unmarshal(up.Metrics, &m); err != nil {
		t.Fatal(err)
	}
	if m["type"] != "container" || m["version"] != shaOld || m["size"] != float64(42) {
		t.Errorf("merged metrics = %s", up.Metrics)
	}
	// Storing a version again makes it the newest of its tag (a rollback
	// or a forced re-pull): created_at moves, and Get returns it.
	if !up.CreatedAt.After(first.CreatedAt) {
		t.Errorf("update kept created_at %v; the re-stored version must become the newest", up.CreatedAt)
	}
	if newest, err := c.Get(ctx, Query{Collection: "122059246,singularityhub", Name: "gitlab-ci", Tag: "latest"}); err != nil || newest.ID != 1 {
		t.Errorf("Get newest after re-storing row 1 = %+v, %v", newest, err)
	}
	byJob, err := c.Get(ctx, Query{JobID: 122059246})
	if err != nil || byJob.ID != 1 {
		t.Errorf("Get by job id = %+v, %v", byJob, err)
	}

	// A new version is a new row, and the newest.
	third, isNew, err := c.Upsert(ctx, Container{Collection: "122059246,singularityhub", Name: "gitlab-ci", Tag: "latest", Version: "ccc", Client: "gitlab"})
	if err != nil || !isNew || third.ID != 3 {
		t.Fatalf("Upsert new = %+v new=%v err=%v", third, isNew, err)
	}
	if third.URI != "122059246,singularityhub/gitlab-ci:latest@ccc" {
		t.Errorf("computed uri = %q", third.URI)
	}

	for _, id := range []int64{1, 2, 3} {
		if err := c.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	all, err = c.List(ctx)
	if err != nil || len(all) != 0 {
		t.Errorf("after deleting all: %+v, %v", all, err)
	}
	var cols int
	if err := c.db.QueryRow("SELECT count(*) FROM collection").Scan(&cols); err != nil || cols != 0 {
		t.Errorf("empty collection left behind: %d collections (%v)", cols, err)
	}
	c.Close()

	if after := tableShape(t, path); !reflect.DeepEqual(after, shapeBefore) {
		t.Errorf("table shape changed:\nbefore %+v\nafter  %+v", shapeBefore, after)
	}
	if after := originalDDL(t, path); !reflect.DeepEqual(after, ddlBefore) {
		t.Errorf("DDL changed:\nbefore %q\nafter  %q", ddlBefore, after)
	}
}

func TestNewCatalogMatchesPythonShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	open(t, path).Close()
	if got, want := tableShape(t, path), tableShape(t, pythonFixture(t)); !reflect.DeepEqual(got, want) {
		t.Errorf("new catalog shape differs from sregistry-cli's:\ngot  %+v\nwant %+v", got, want)
	}
	// Re-opening is a no-op and keeps the version.
	c := open(t, path)
	var v int
	if err := c.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("user_version = %d (%v), want %d", v, err, SchemaVersion)
	}
	var mode string
	if err := c.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"missing directory", filepath.Join(dir, "nope", "sregistry.db"), "does not exist"},
		{"path is a directory", dir, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(context.Background(), tt.path)
			if err == nil {
				c.Close()
				t.Fatalf("Open(%s) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "we?ird #dir %20 ü")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sregistry.db")
	c := open(t, path)
	seed(t, c, Container{Collection: "a", Name: "b", Tag: "c"})
	c.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at %s: %v", path, err)
	}
	if got, err := open(t, path).List(context.Background()); err != nil || len(got) != 1 {
		t.Errorf("reopen: %d rows, %v", len(got), err)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Time
	}{
		{"server default", "2026-11-24 10:00:00", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)},
		{"python utcnow", "2026-11-24 10:00:00.123456", time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)},
		{"rfc3339", "2026-11-24T11:00:00+01:00", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)},
		{"empty", "", time.Time{}},
		{"garbage", "yesterday", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseTime(tt.in); !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if got := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC).Format(TimeLayout); got != "2026-01-02 03:04:05.000006" {
		t.Errorf("TimeLayout writes %q", got)
	}
}

func seed(t testing.TB, c *Catalog, rows ...Container) []Container {
	t.Helper()
	var out []Container
	for _, r := range rows {
		if r.Client == "" {
			r.Client = "gitlab"
		}
		got, _, err := c.Upsert(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := seed(t, c,
		Container{Collection: "g/sub", Name: "p", Tag: "latest", Version: "v1", CreatedAt: t0, Pull: json.RawMessage(`{"job_id": 7}`)},
		Container{Collection: "g/sub", Name: "p", Tag: "latest", Version: "v2", CreatedAt: t0.Add(time.Hour), Pull: json.RawMessage(`{"job_id": 8}`)},
		// Same timestamp as v2, inserted later: id breaks the tie.
		Container{Collection: "g/sub", Name: "p", Tag: "latest", Version: "v3", CreatedAt: t0.Add(time.Hour)},
		// Inserted last but older: created_at wins over id.
		Container{Collection: "g/sub", Name: "p", Tag: "latest", Version: "v0", CreatedAt: t0.Add(-time.Hour)},
		Container{Collection: "g/sub", Name: "p", Tag: "dev", Version: "v9", CreatedAt: t0},
	)
	tests := []struct {
		name   string
		q      Query
		wantID int64
		err    error
	}{
		{"newest of a tag", Query{Collection: "g/sub", Name: "p", Tag: "latest"}, rows[2].ID, nil},
		{"exact version", Query{Collection: "g/sub", Name: "p", Tag: "latest", Version: "v1"}, rows[0].ID, nil},
		{"other tag", Query{Collection: "g/sub", Name: "p", Tag: "dev"}, rows[4].ID, nil},
		{"job id", Query{JobID: 8}, rows[1].ID, nil},
		{"job id and tag", Query{JobID: 7, Tag: "latest"}, rows[0].ID, nil},
		{"unknown job", Query{JobID: 99}, 0, ErrNotFound},
		{"unknown collection", Query{Collection: "g", Name: "p"}, 0, ErrNotFound},
		{"unknown version", Query{Collection: "g/sub", Name: "p", Version: "nope"}, 0, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Get(ctx, tt.q)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Get(%v) error = %v, want %v", tt.q, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.wantID {
				t.Errorf("Get(%v) = row %d (%s), want row %d", tt.q, got.ID, got.Version, tt.wantID)
			}
		})
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	seed(t, c,
		Container{Collection: "me", Name: "hello", Tag: "one", Version: "v1"},                      // 1
		Container{Collection: "122059246,singularityhub", Name: "gitlab-ci", Tag: "latest"},        // 2
		Container{Collection: "me", Name: "world", Tag: "latest", URI: "me/world:latest@deadbeef"}, // 3
		Container{Collection: "other", Name: "hello-two", Tag: "x"},                                // 4
	)
	tests := []struct {
		name     string
		patterns []string
		want     []string // names in order
	}{
		{"all", nil, []string{"hello", "gitlab-ci", "world", "hello-two"}},
		{"star", []string{"*"}, []string{"hello", "gitlab-ci", "world", "hello-two"}},
		{"star with others", []string{"hello", "*"}, []string{"hello", "gitlab-ci", "world", "hello-two"}},
		{"name like", []string{"hello"}, []string{"hello", "hello-two"}},
		{"tag like", []string{"lates"}, []string{"gitlab-ci", "world"}},
		{"uri like", []string{"deadbe"}, []string{"world"}},
		{"uri with collection", []string{"122059246"}, []string{"gitlab-ci"}},
		{"case-insensitive like", []string{"HELLO"}, []string{"hello", "hello-two"}},
		{"union keeps id order", []string{"world", "hello"}, []string{"hello", "world", "hello-two"}},
		{"no match", []string{"zzz"}, nil},
		{"underscore is a wildcard", []string{"w_rld"}, []string{"world"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.List(ctx, tt.patterns...)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, g := range got {
				names = append(names, g.Name)
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("List(%q) = %q, want %q", tt.patterns, names, tt.want)
			}
		})
	}
	each, err := c.ListEach(ctx, []string{"world", "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(each) != 2 || len(each[0]) != 1 || len(each[1]) != 2 {
		t.Errorf("ListEach = %d blocks %v", len(each), each)
	}
}

func TestUpsertValidation(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	tests := []struct {
		name string
		ct   Container
		want string
	}{
		{"no collection", Container{Name: "a", Tag: "b"}, "required"},
		{"no tag", Container{Collection: "a", Name: "b"}, "required"},
		{"metrics not an object", Container{Collection: "a", Name: "b", Tag: "c", Metrics: json.RawMessage(`[1]`)}, "JSON object"},
		{"bad pull", Container{Collection: "a", Name: "b", Tag: "c", Pull: json.RawMessage(`{`)}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.Upsert(context.Background(), tt.ct)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Upsert error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUpsertUpdate(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	first := seed(t, c, Container{Collection: "a", Name: "b", Tag: "t", Version: "v", Image: "/x", URL: "u1",
		Metrics: json.RawMessage(`{"keep": 1, "over": 1}`), Pull: json.RawMessage(`{"job_id": 1}`)})[0]
	tests := []struct {
		name  string
		ct    Container
		check func(t *testing.T, got Container)
	}{
		{"metrics merged", Container{Metrics: json.RawMessage(`{"over": 2, "new": 3}`)}, func(t *testing.T, got Container) {
			if string(got.Metrics) != `{"keep":1,"new":3,"over":2}` {
				t.Errorf("metrics = %s", got.Metrics)
			}
		}},
		{"empty image and url kept", Container{}, func(t *testing.T, got Container) {
			if got.Image != "/x" || got.URL != "u1" {
				t.Errorf("image/url = %q %q", got.Image, got.URL)
			}
		}},
		{"nil pull kept", Container{}, func(t *testing.T, got Container) {
			if string(got.Pull) != `{"job_id": 1}` {
				t.Errorf("pull = %s", got.Pull)
			}
		}},
		{"pull replaced", Container{Pull: json.RawMessage(`{"job_id": 2}`)}, func(t *testing.T, got Container) {
			if string(got.Pull) != `{"job_id": 2}` {
				t.Errorf("pull = %s", got.Pull)
			}
		}},
		{"image url client overwritten", Container{Image: "/y", URL: "u2", Client: "local"}, func(t *testing.T, got Container) {
			if got.Image != "/y" || got.URL != "u2" || got.Client != "local" {
				t.Errorf("got %+v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			ct.Collection, ct.Name, ct.Tag, ct.Version = "a", "b", "t", "v"
			if ct.Client == "" {
				ct.Client = "gitlab"
			}
			got, isNew, err := c.Upsert(ctx, ct)
			if err != nil {
				t.Fatal(err)
			}
			if isNew || got.ID != first.ID {
				t.Fatalf("Upsert created row %d, want update of %d", got.ID, first.ID)
			}
			tt.check(t, got)
		})
	}
}

func TestRenameAndSetImage(t *testing.T) {
	ctx := context.Background()
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	rows := seed(t, c,
		Container{Collection: "old", Name: "a", Tag: "t", Version: "v"},
		Container{Collection: "taken", Name: "b", Tag: "t", Version: "v"},
		Container{Collection: "keep", Name: "c", Tag: "t", Version: "v"},
		Container{Collection: "keep", Name: "d", Tag: "t", Version: "v"},
	)
	collections := func() []string {
		var out []string
		r, err := c.db.Query("SELECT name FROM collection ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var s string
			r.Scan(&s)
			out = append(out, s)
		}
		return out
	}

	// Conflict: nothing changes.
	err := c.Rename(ctx, rows[0].ID, "taken", "b", "t", "taken/b:t@v", "/p")
	if !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto an existing row: %v, want ErrExists", err)
	}
	if got, _ := c.Get(ctx, Query{Collection: "old", Name: "a"}); got.ID != rows[0].ID {
		t.Errorf("row changed after a failed rename: %+v", got)
	}

	if err := c.Rename(ctx, rows[0].ID, "new/nested", "z", "t2", "new/nested/z:t2@v", "/p/z.sif"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, Query{Collection: "new/nested", Name: "z", Tag: "t2"})
	if err != nil || got.Version != "v" || got.Image != "/p/z.sif" || got.URI != "new/nested/z:t2@v" {
		t.Errorf("renamed row = %+v, %v", got, err)
	}
	if want := []string{"keep", "new/nested", "taken"}; !reflect.DeepEqual(collections(), want) {
		t.Errorf("collections = %q, want %q (old removed)", collections(), want)
	}
	// Renaming within a collection that keeps other rows keeps it.
	if err := c.Rename(ctx, rows[2].ID, "keep", "c2", "t", "keep/c2:t@v", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, 999, "x", "y", "z", "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("rename of a missing row: %v", err)
	}

	if err := c.SetImage(ctx, rows[3].ID, "/moved.sif"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, Query{Name: "d"}); got.Image != "/moved.sif" {
		t.Errorf("SetImage: image = %q", got.Image)
	}
	if err := c.SetImage(ctx, 999, "/x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetImage missing row: %v", err)
	}
	if err := c.Delete(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete missing row: %v", err)
	}
	if n, err := c.ImageRefs(ctx, "/moved.sif"); err != nil || n != 1 {
		t.Errorf("ImageRefs = %d, %v", n, err)
	}
}

func TestConcurrentHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(context.Background(), path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			errs <- upsertMany(c, w, each)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkCounts(t, path, workers, each)
}

// upsertMany writes each rows of its own plus one shared row per iteration.
func upsertMany(c *Catalog, worker, each int) error {
	ctx := context.Background()
	for i := range each {
		if _, _, err := c.Upsert(ctx, Container{Collection: "w/" + strconv.Itoa(worker), Name: "img", Tag: "t" + strconv.Itoa(i), Version: "v", Client: "local",
			Pull: json.RawMessage(fmt.Sprintf(`{"job_id": %d}`, worker*1000+i))}); err != nil {
			return fmt.Errorf("worker %d upsert %d: %w", worker, i, err)
		}
		if _, _, err := c.Upsert(ctx, Container{Collection: "shared", Name: "img", Tag: "latest", Version: "same", Client: "local",
			Metrics: json.RawMessage(fmt.Sprintf(`{"w%d": %d}`, worker, i))}); err != nil {
			return fmt.Errorf("worker %d shared upsert %d: %w", worker, i, err)
		}
	}
	return nil
}

func checkCounts(t *testing.T, path string, workers, each int) {
	t.Helper()
	c := open(t, path)
	all, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := workers*each + 1; len(all) != want {
		t.Errorf("%d rows, want %d", len(all), want)
	}
	shared, err := c.Get(context.Background(), Query{Collection: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]int
	if err := json.Unmarshal(shared.Metrics, &m); err != nil || len(m) != workers {
		t.Errorf("shared row metrics = %s, want one key per worker", shared.Metrics)
	}
}

const childEnv = "SREGISTRY_CATALOG_TEST_CHILD"

func TestMultiProcessUpsert(t *testing.T) {
	if spec := os.Getenv(childEnv); spec != "" {
		path, w, _ := strings.Cut(spec, "|")
		worker, _ := strconv.Atoi(w)
		c, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := upsertMany(c, worker, 50); err != nil {
			t.Fatal(err)
		}
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "c.db")
	const procs = 8
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessUpsert$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+path+"|"+strconv.Itoa(i))
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range procs {
		if errs[i] != nil || strings.Contains(string(outs[i]), "locked") || strings.Contains(string(outs[i]), "SQLITE_BUSY") {
			t.Errorf("process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	checkCounts(t, path, procs, 50)
}

// BenchmarkList10000 lists a 10,000-row catalog.
func BenchmarkList10000(b *testing.B) {
	ctx := context.Background()
	c := open(b, filepath.Join(b.TempDir(), "c.db"))
	tx, err := c.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if _, err := getOrCreateCollection(ctx, tx, fmt.Sprintf("group%d/sub", i)); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now().UTC().Format(TimeLayout)
	for i := range 10000 {
		v := fmt.Sprintf("%064x", i)
		res, err := tx.Exec(`INSERT INTO container (created_at, metrics, name, tag, image, url, uri, client, version, collection_id)
			VALUES (?, ?, ?, 'latest', ?, ?, ?, 'gitlab', ?, ?)`, now, `{"type": "container", "tag": "latest"}`,
			fmt.Sprintf("img%d", i), "/s/"+v+".sif", "https://example/x", fmt.Sprintf("group/img%d:latest@%s", i, v), v, i%100+1)
		if err != nil {
			b.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if _, err := tx.Exec("INSERT INTO container_pull VALUES (?, ?)", id, fmt.Sprintf(`{"job_id": %d}`, i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		all, err := c.List(ctx)
		if err != nil || len(all) != 10000 {
			b.Fatalf("List: %d rows, %v", len(all), err)
		}
	}
}

// Package catalog is the local SQLite catalog of images, schema-compatible with
// sregistry-cli 0.2.39 (tables collection and container), plus versioned
// migrations for what sregistry adds.
//
// Compatibility: the tables collection and container are created with the
// DDL SQLAlchemy emitted for sregistry-cli 0.2.39 when they are missing and
// are never altered, so a database written by the Python tool is used in
// place (and stays readable by it). created_at is written as
// "YYYY-MM-DD HH:MM:SS.ffffff" UTC and read in that form or without the
// fraction. Opening switches the file to WAL journal mode (persistent; SQLite
// 3.7+ clients, including Python's, read WAL databases).
//
// Additions are versioned with PRAGMA user_version (it is stored in the file
// header and changes atomically with the migration's transaction): version 1
// adds table container_pull (Container.Pull JSON) and lookup indexes.
//
// Deliberate differences from the original: Get returns the newest match
// (the original returned the oldest); Delete and Rename remove collections
// they leave empty; every write runs in one BEGIN IMMEDIATE transaction, so
// concurrent processes queue on the busy timeout instead of failing.
package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
)

// ErrNotFound is returned when no container matches a query.
var ErrNotFound = errors.New("not found in catalog")

// ErrExists is wrapped when a rename would collide with an existing row.
var ErrExists = errors.New("already exists in catalog")

// Container is one row of the container table joined with its collection name.
type Container struct {
	ID           int64
	CollectionID int64
	Collection   string // collection.name
	Name         string // image name
	Tag          string
	Version      string // sha256 hex, a user-given @version, or ""
	Image        string // absolute file path, or "" when NULL
	URL          string // download URL (secrets stripped) or collection/name; "" when NULL
	URI          string // collection/name:tag@version
	Client       string // backend name, e.g. "gitlab"
	CreatedAt    time.Time
	Metrics      json.RawMessage // the metrics column: a JSON object, "{}" when empty
	Pull         json.RawMessage // sregistry extension: JSON pull metadata (job id, artifact path, ...); nil when absent
}

// Query selects containers. Empty fields match anything except Collection/Name/Tag
// which are matched exactly when set. JobID > 0 matches Pull metadata job_id.
type Query struct {
	Collection string
	Name       string
	Tag        string
	Version    string
	JobID      int64
}

// Catalog is an open catalog database. It is safe for use by one process at a
// time per handle; many processes may share the file (WAL, busy timeout).
// A handle may also be shared by goroutines.
type Catalog struct {
	db   *sql.DB
	path string
	wmu  *sync.Mutex // shared by every handle on path in this process
}

// writeLocks serialises writers of one file inside a process, so they queue
// on a mutex instead of polling SQLite's busy handler; other processes are
// still coordinated by SQLite's file locks.
var writeLocks sync.Map // absolute path -> *sync.Mutex

// TimeLayout is how created_at is written (SQLAlchemy's str(datetime.utcnow())).
const TimeLayout = "2006-01-02 15:04:05.000000"

// BusyTimeout is how long a connection waits for another writer's lock.
const BusyTimeout = 30 * time.Second

// SchemaVersion is the PRAGMA user_version a fully migrated catalog has.
const SchemaVersion = 1

// The DDL of sregistry-cli 0.2.39, laid out as SQLAlchemy 1.4 emits it.
const (
	ddlCollection = "CREATE TABLE collection (\n\tid INTEGER NOT NULL, \n\tname VARCHAR(150), \n\ttoken VARCHAR(50), \n\tcreated_at DATETIME, \n\tPRIMARY KEY (id), \n\tUNIQUE (name)\n)"
	ddlContainer  = "CREATE TABLE container (\n\tid INTEGER NOT NULL, \n\tcreated_at DATETIME, \n\tmetrics TEXT NOT NULL, \n\tname VARCHAR(250) NOT NULL, \n\ttag VARCHAR(250) NOT NULL, \n\timage VARCHAR(250), \n\turl VARCHAR(500), \n\turi VARCHAR(500), \n\tclient VARCHAR(50) NOT NULL, \n\tversion VARCHAR(250), \n\tcollection_id INTEGER NOT NULL, \n\tPRIMARY KEY (id), \n\tCONSTRAINT _container_uc UNIQUE (collection_id, name, tag, client, version), \n\tFOREIGN KEY(collection_id) REFERENCES collection (id)\n)"
)

// migrations[i] takes the schema from user_version i to i+1.
var migrations = []string{
	`CREATE TABLE IF NOT EXISTS container_pull (
	container_id INTEGER PRIMARY KEY REFERENCES container(id) ON DELETE CASCADE,
	data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sregistry_container_lookup ON container (collection_id, name, tag, version);
CREATE INDEX IF NOT EXISTS sregistry_container_name ON container (name);
CREATE INDEX IF NOT EXISTS sregistry_container_image ON container (image);`,
}

// DSN returns the modernc.org/sqlite data source name Open uses for path:
// busy timeout, foreign keys, WAL and BEGIN IMMEDIATE on every pooled connection.
func DSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(BusyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_txlock", "immediate")
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}).String()
}

// Open opens (creating if missing) the catalog file at path, applying schema
// creation and migrations. The directory must exist.
func Open(ctx context.Context, path string) (*Catalog, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open catalog %s: database location %s does not exist; create it first (mkdir -p %s): %w", abs, dir, dir, err)
		}
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("open catalog %s: %s is not a directory; set the database location to a directory", abs, dir)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("open catalog %s: it is a directory; the catalog must be a file path", abs)
	}

	db, err := sql.Open("sqlite", DSN(abs))
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", abs, err)
	}
	mu, _ := writeLocks.LoadOrStore(abs, new(sync.Mutex))
	c := &Catalog{db: db, path: abs, wmu: mu.(*sync.Mutex)}
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w; check that the file is an sregistry database and is writable", abs, err)
	}
	return c, nil
}

// Path is the absolute path of the database file.
func (c *Catalog) Path() string { return c.path }

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

// migrate creates the original tables when missing and applies migrations.
func (c *Catalog) migrate(ctx context.Context) error {
	// Fast path without the write lock: an up-to-date catalog needs nothing.
	var v int
	if err := retryBusy(ctx, func() error {
		return c.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	}); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v >= SchemaVersion {
		return nil
	}
	return c.write(ctx, func(tx *sql.Tx) error {
		for _, t := range []struct{ name, ddl string }{{"collection", ddlCollection}, {"container", ddlContainer}} {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", t.name).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				if _, err := tx.ExecContext(ctx, t.ddl); err != nil {
					return fmt.Errorf("create table %s: %w", t.name, err)
				}
			}
		}
		// Re-read under the write lock: another process may have migrated meanwhile.
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		return nil
	})
}

const selectContainer = `SELECT c.id, c.collection_id, col.name, c.name, c.tag, c.version, c.image, c.url, c.uri,
	c.client, CAST(c.created_at AS TEXT), c.metrics, p.data
FROM container c
LEFT JOIN collection col ON col.id = c.collection_id
LEFT JOIN container_pull p ON p.container_id = c.id`

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Get returns the NEWEST container matching q (by created_at then id), or ErrNotFound.
func (c *Catalog) Get(ctx context.Context, q Query) (Container, error) {
	return getOne(ctx, c.db, q)
}

func getOne(ctx context.Context, db queryer, q Query) (Container, error) {
	var where []string
	var args []any
	if q.Collection != "" {
		where, args = append(where, "col.name = ?"), append(args, q.Collection)
	}
	if q.Name != "" {
		where, args = append(where, "c.name = ?"), append(args, q.Name)
	}
	if q.Tag != "" {
		where, args = append(where, "c.tag = ?"), append(args, q.Tag)
	}
	if q.Version != "" {
		where, args = append(where, "c.version = ?"), append(args, q.Version)
	}
	if q.JobID > 0 {
		where, args = append(where, "json_valid(p.data) AND json_extract(p.data, '$.job_id') = ?"), append(args, q.JobID)
	}
	query := selectContainer
	if len(where) > 0 {
		query += "\nWHERE " + strings.Join(where, " AND ")
	}
	query += "\nORDER BY c.created_at DESC, c.id DESC LIMIT 1"
	var out []Container
	err := retryBusy(ctx, func() (err error) {
		out, err = scanAll(ctx, db, query, args...)
		return err
	})
	if err != nil {
		return Container{}, fmt.Errorf("catalog lookup %s: %w", q, err)
	}
	if len(out) == 0 {
		return Container{}, fmt.Errorf("%s: %w", q, ErrNotFound)
	}
	return out[0], nil
}

// String describes q for messages, e.g. "collection/name:tag@version".
func (q Query) String() string {
	s := q.Name
	if q.Collection != "" {
		s = q.Collection + "/" + s
	}
	if q.Tag != "" {
		s += ":" + q.Tag
	}
	if q.Version != "" {
		s += "@" + q.Version
	}
	if q.JobID > 0 {
		s += fmt.Sprintf(" (job %d)", q.JobID)
	}
	if s == "" {
		s = "any image"
	}
	return s
}

// List returns containers matching any of the patterns with sregistry-cli's
// filter (name == q OR tag LIKE %q% OR uri LIKE %q% OR name LIKE %q%), in
// insertion order. No patterns, or "*", lists all.
//
// Several patterns give the union, each row once, in insertion (id) order.
// Use ListEach for one result per pattern, as `images a b` printed them.
// As in the original, LIKE is ASCII case-insensitive and '%'/'_' in a
// pattern are wildcards.
func (c *Catalog) List(ctx context.Context, patterns ...string) ([]Container, error) {
	return c.list(ctx, selectContainer, patterns)
}

// selectBrief is selectContainer without the metrics and pull columns.
const selectBrief = `SELECT c.id, c.collection_id, col.name, c.name, c.tag, c.version, c.image, c.url, c.uri,
	c.client, CAST(c.created_at AS TEXT), NULL, NULL
FROM container c
LEFT JOIN collection col ON col.id = c.collection_id`

// ListBrief is List without Metrics and Pull (Metrics is "{}", Pull nil):
// what a listing shows, at a fraction of the cost on large catalogs.
func (c *Catalog) ListBrief(ctx context.Context, patterns ...string) ([]Container, error) {
	return c.list(ctx, selectBrief, patterns)
}

func (c *Catalog) list(ctx context.Context, sel string, patterns []string) ([]Container, error) {
	var where []string
	var args []any
	for _, p := range patterns {
		if p == "*" {
			where = nil
			break
		}
		like := "%" + p + "%"
		where = append(where, "(c.name = ? OR c.tag LIKE ? OR c.uri LIKE ? OR c.name LIKE ?)")
		args = append(args, p, like, like, like)
	}
	query := sel
	if len(where) > 0 {
		query += "\nWHERE " + strings.Join(where, " OR ")
	} else {
		args = nil
	}
	query += "\nORDER BY c.id"
	var out []Container
	err := retryBusy(ctx, func() (err error) {
		out, err = scanAll(ctx, c.db, query, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list catalog: %w", err)
	}
	return out, nil
}

// ListEach runs List once per pattern and returns the results in pattern
// order; no patterns is the same as one "*".
func (c *Catalog) ListEach(ctx context.Context, patterns []string) ([][]Container, error) {
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	out := make([][]Container, 0, len(patterns))
	for _, p := range patterns {
		cs, err := c.List(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, cs)
	}
	return out, nil
}

// ImageRefs counts the rows whose image path is exactly path.
func (c *Catalog) ImageRefs(ctx context.Context, path string) (int, error) {
	var n int
	err := retryBusy(ctx, func() error {
		return c.db.QueryRowContext(ctx, "SELECT count(*) FROM container WHERE image = ?", path).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count catalog rows for %s: %w", path, err)
	}
	return n, nil
}

// Upsert inserts c, or updates the row with the same (collection, name, tag,
// version): metrics merged, url/client/image/pull overwritten. The collection
// is created when missing. It returns the stored row and whether it was new.
//
// Like the original, client is not part of the lookup although it is in the
// table's unique key: re-adding from another client updates the row (when
// several rows differ only by client, the one with ct.Client is preferred).
// uri is overwritten too (it is computed from the columns when empty). An
// update sets created_at like an insert (a zero ct.CreatedAt means now): a
// version stored again — a rollback, a forced re-pull — becomes the newest
// of its tag, which is what Get returns. The pull row is
// replaced only when ct.Pull is not nil. An empty Image or URL keeps the old value.
func (c *Catalog) Upsert(ctx context.Context, ct Container) (Container, bool, error) {
	if ct.Collection == "" || ct.Name == "" || ct.Tag == "" {
		return Container{}, false, fmt.Errorf("catalog upsert: collection, name and tag are required (got %q/%q:%q)", ct.Collection, ct.Name, ct.Tag)
	}
	newMetrics := map[string]json.RawMessage{}
	if len(ct.Metrics) > 0 {
		if err := json.Unmarshal(ct.Metrics, &newMetrics); err != nil || newMetrics == nil {
			return Container{}, false, fmt.Errorf("catalog upsert %s: metrics must be a JSON object: %v", ct.uri(), err)
		}
	}
	if ct.Pull != nil && !json.Valid(ct.Pull) {
		return Container{}, false, fmt.Errorf("catalog upsert %s: pull metadata is not valid JSON", ct.uri())
	}
	created := ct.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	var stored Container
	var isNew bool
	err := c.write(ctx, func(tx *sql.Tx) error {
		colID, err := getOrCreateCollection(ctx, tx, ct.Collection)
		if err != nil {
			return err
		}
		var id int64
		var oldMetrics sql.NullString
		err = tx.QueryRowContext(ctx, `SELECT id, metrics FROM container
			WHERE collection_id = ? AND name = ? AND tag = ? AND COALESCE(version, '') = ?
			ORDER BY client = ? DESC, created_at DESC, id DESC LIMIT 1`,
			colID, ct.Name, ct.Tag, ct.Version, ct.Client).Scan(&id, &oldMetrics)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			isNew = true
			res, err := tx.ExecContext(ctx, `INSERT INTO container
				(created_at, metrics, name, tag, image, url, uri, client, version, collection_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				created.UTC().Format(TimeLayout), mergeMetrics("", newMetrics), ct.Name, ct.Tag,
				nullable(ct.Image), nullable(ct.URL), ct.uri(), ct.Client, ct.Version, colID)
			if err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			isNew = false
			_, err := tx.ExecContext(ctx, `UPDATE container SET created_at = ?, metrics = ?, url = COALESCE(?, url), uri = ?,
				client = ?, image = COALESCE(?, image) WHERE id = ?`,
				created.UTC().Format(TimeLayout), mergeMetrics(oldMetrics.String, newMetrics), nullable(ct.URL), ct.uri(), ct.Client, nullable(ct.Image), id)
			if err != nil {
				return fmt.Errorf("update row %d: %w", id, err)
			}
		}
		if ct.Pull != nil {
			if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO container_pull (container_id, data) VALUES (?, ?)", id, string(ct.Pull)); err != nil {
				return fmt.Errorf("store pull metadata: %w", err)
			}
		}
		stored, err = byID(ctx, tx, id)
		return err
	})
	if err != nil {
		return Container{}, false, fmt.Errorf("catalog upsert %s: %w", ct.uri(), err)
	}
	return stored, isNew, nil
}

// Delete removes a container row by id. A collection left empty is removed too.
func (c *Catalog) Delete(ctx context.Context, id int64) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		old, err := byID(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM container_pull WHERE container_id = ?", id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM container WHERE id = ?", id); err != nil {
			return err
		}
		return dropIfEmpty(ctx, tx, old.CollectionID)
	})
	if err != nil {
		return fmt.Errorf("catalog delete row %d: %w", id, err)
	}
	return nil
}

// SetImage updates the image path of a row.
func (c *Catalog) SetImage(ctx context.Context, id int64, path string) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE container SET image = ? WHERE id = ?", nullable(path), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("row %d: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog set image of row %d: %w", id, err)
	}
	return nil
}

// Rename moves a row to a new collection/name/tag (creating the collection),
// keeping its version, and sets uri and image path. Emptied collections are removed.
// A row that already has the new (collection, name, tag, version) gives an
// error wrapping ErrExists and nothing changes.
func (c *Catalog) Rename(ctx context.Context, id int64, collection, name, tag, uri, image string) error {
	if collection == "" || name == "" || tag == "" {
		return fmt.Errorf("catalog rename row %d: collection, name and tag are required (got %q/%q:%q)", id, collection, name, tag)
	}
	err := c.write(ctx, func(tx *sql.Tx) error {
		old, err := byID(ctx, tx, id)
		if err != nil {
			return err
		}
		colID, err := getOrCreateCollection(ctx, tx, collection)
		if err != nil {
			return err
		}
		var other int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM container WHERE collection_id = ? AND name = ? AND tag = ?
			AND COALESCE(version, '') = ? AND id != ? LIMIT 1`, colID, name, tag, old.Version, id).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("%s/%s:%s@%s (row %d) %w; remove it first or choose another name", collection, name, tag, old.Version, other, ErrExists)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE container SET collection_id = ?, name = ?, tag = ?, uri = ?, image = ? WHERE id = ?",
			colID, name, tag, nullable(uri), nullable(image), id); err != nil {
			return err
		}
		if old.CollectionID != colID {
			return dropIfEmpty(ctx, tx, old.CollectionID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog rename row %d to %s/%s:%s: %w", id, collection, name, tag, err)
	}
	return nil
}

// write runs fn in a BEGIN IMMEDIATE transaction (the DSN's _txlock), retrying
// the whole transaction when SQLite still reports busy after the timeout.
func (c *Catalog) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return retryBusy(ctx, func() error {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// retryBusy retries fn while it fails with SQLITE_BUSY/SQLITE_LOCKED. The
// busy timeout normally absorbs contention; this is the last resort for the
// cases SQLite does not wait on (e.g. a WAL recovery in progress).
func retryBusy(ctx context.Context, fn func() error) error {
	delay := 10 * time.Millisecond
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if err = fn(); err == nil || !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay + jitter(delay)):
		}
		delay *= 2
	}
	return fmt.Errorf("%w; another sregistry process holds the catalog lock, try again", err)
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

func jitter(d time.Duration) time.Duration {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return d * time.Duration(b[0]) / 256
}

func getOrCreateCollection(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, "SELECT id FROM collection WHERE name = ?", name).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("look up collection %s: %w", name, err)
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO collection (name, token, created_at) VALUES (?, ?, ?)",
		name, uuid.NewString(), time.Now().UTC().Format(TimeLayout))
	if err != nil {
		return 0, fmt.Errorf("create collection %s: %w", name, err)
	}
	return res.LastInsertId()
}

func dropIfEmpty(ctx context.Context, tx *sql.Tx, colID int64) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM collection WHERE id = ? AND NOT EXISTS (SELECT 1 FROM container WHERE collection_id = ?)", colID, colID)
	if err != nil {
		return fmt.Errorf("remove empty collection %d: %w", colID, err)
	}
	return nil
}

func byID(ctx context.Context, db queryer, id int64) (Container, error) {
	out, err := scanAll(ctx, db, selectContainer+"\nWHERE c.id = ?", id)
	if err != nil {
		return Container{}, err
	}
	if len(out) == 0 {
		return Container{}, fmt.Errorf("row %d: %w", id, ErrNotFound)
	}
	return out[0], nil
}

func scanAll(ctx context.Context, db queryer, query string, args ...any) ([]Container, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Container
	for rows.Next() {
		var ct Container
		var col, version, image, url, uri, created, metrics, pull sql.NullString
		if err := rows.Scan(&ct.ID, &ct.CollectionID, &col, &ct.Name, &ct.Tag, &version, &image, &url, &uri,
			&ct.Client, &created, &metrics, &pull); err != nil {
			return nil, err
		}
		ct.Collection, ct.Version, ct.Image, ct.URL, ct.URI = col.String, version.String, image.String, url.String, uri.String
		ct.CreatedAt = ParseTime(created.String)
		if metrics.Valid && json.Valid([]byte(metrics.String)) && strings.HasPrefix(strings.TrimSpace(metrics.String), "{") {
			ct.Metrics = json.RawMessage(metrics.String)
		} else {
			ct.Metrics = json.RawMessage("{}")
		}
		if pull.Valid && json.Valid([]byte(pull.String)) {
			ct.Pull = json.RawMessage(pull.String)
		}
		out = append(out, ct)
	}
	return out, rows.Err()
}

// ParseTime reads a created_at value as the Python tool or sregistry wrote
// it ("YYYY-MM-DD HH:MM:SS" with an optional fraction, or RFC 3339), in UTC.
// Unparsable or empty values give the zero time.
func ParseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// mergeMetrics overlays upd on the JSON object old (new keys win) and
// returns the JSON text; an unreadable old value is replaced.
func mergeMetrics(old string, upd map[string]json.RawMessage) string {
	m := map[string]json.RawMessage{}
	if old != "" {
		if err := json.Unmarshal([]byte(old), &m); err != nil || m == nil {
			m = map[string]json.RawMessage{}
		}
	}
	for k, v := range upd {
		m[k] = v
	}
	b, err := json.Marshal(m) // keys sorted, like the original's json.dumps(sort_keys) output
	if err != nil {
		return "{}"
	}
	return string(b)
}

func (ct Container) uri() string {
	if ct.URI != "" {
		return ct.URI
	}
	u := ct.Collection + "/" + ct.Name + ":" + ct.Tag
	if ct.Version != "" {
		u += "@" + ct.Version
	}
	return u
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

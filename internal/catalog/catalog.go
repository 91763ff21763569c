// Package catalog is the local SQLite catalog of images, schema-compatible with
// sregistry-cli 0.2.39 (tables collection and container), plus versioned
// migrations for what sregistry adds.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned when no container matches a query.
var ErrNotFound = errors.New("not found in catalog")

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
type Catalog struct{}

// Open opens (creating if missing) the catalog file at path, applying schema
// creation and migrations.
func Open(ctx context.Context, path string) (*Catalog, error) { panic("unimplemented") }

// Close closes the database.
func (c *Catalog) Close() error { panic("unimplemented") }

// Get returns the NEWEST container matching q (by created_at then id), or ErrNotFound.
func (c *Catalog) Get(ctx context.Context, q Query) (Container, error) { panic("unimplemented") }

// List returns containers matching any of the patterns with sregistry-cli's
// filter (name == q OR tag LIKE %q% OR uri LIKE %q% OR name LIKE %q%), in
// insertion order. No patterns, or "*", lists all.
func (c *Catalog) List(ctx context.Context, patterns ...string) ([]Container, error) {
	panic("unimplemented")
}

// Upsert inserts c, or updates the row with the same (collection, name, tag,
// version): metrics merged, url/client/image/pull overwritten. The collection
// is created when missing. It returns the stored row and whether it was new.
func (c *Catalog) Upsert(ctx context.Context, ct Container) (Container, bool, error) {
	panic("unimplemented")
}

// Delete removes a container row by id.
func (c *Catalog) Delete(ctx context.Context, id int64) error { panic("unimplemented") }

// SetImage updates the image path of a row.
func (c *Catalog) SetImage(ctx context.Context, id int64, path string) error {
	panic("unimplemented")
}

// Rename moves a row to a new collection/name/tag (creating the collection),
// keeping its version, and sets uri and image path. Emptied collections are removed.
func (c *Catalog) Rename(ctx context.Context, id int64, collection, name, tag, uri, image string) error {
	panic("unimplemented")
}

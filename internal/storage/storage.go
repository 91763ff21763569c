// Package storage keeps image files under the storage root consistent with the
// catalog: <root>/<collection>/<image>/<tag>@<sha256>.sif, written by temp
// file + fsync + rename, never outside the root.
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/names"
)

// ErrOutsideRoot is wrapped when a name or path would leave the storage root.
var ErrOutsideRoot = errors.New("path escapes the storage root")

// Store is the storage root plus the catalog that indexes it.
type Store struct {
	Root    string
	Catalog *catalog.Catalog
	Now     func() time.Time
}

// New returns a Store. root is made absolute.
func New(root string, cat *catalog.Catalog) (*Store, error) { panic("unimplemented") }

// Dir returns <root>/<FullCollection>/<Image>, created (0755) if missing,
// after checking it stays inside the root.
func (s *Store) Dir(n names.Name) (string, error) { panic("unimplemented") }

// PathFor is Dir(n)/<tag>@<version>.sif, or <tag>.sif when n.Version is empty.
func (s *Store) PathFor(n names.Name) (string, error) { panic("unimplemented") }

// AddOptions are the catalog fields of an added image.
type AddOptions struct {
	Copy    bool           // copy instead of move (Add only)
	Client  string         // backend name; "" means the active client or "local"
	URL     string         // source URL (no secrets); "" means collection/image
	Metrics map[string]any // merged into the metrics column (inspect attributes etc.)
	Pull    any            // JSON-marshalled into the pull metadata, nil for none
}

// Add brings the file src into storage under n: sha256 computed while copying
// into a temp file in the destination directory (or by hashing when a same-
// filesystem rename moves it), fsync, rename to <tag>@<sha>.sif, then the
// catalog row is upserted. n.Version, when set, is used instead of the sha.
func (s *Store) Add(ctx context.Context, src string, n names.Name, o AddOptions) (catalog.Container, bool, error) {
	panic("unimplemented")
}

// Adopt registers a complete file tmp that already lives in Dir(n) and whose
// sha256 is known: it is renamed to its final name and the row upserted. On
// failure tmp is removed and no row is written.
func (s *Store) Adopt(ctx context.Context, tmp string, n names.Name, sha256 string, o AddOptions) (catalog.Container, bool, error) {
	panic("unimplemented")
}

// RemoveResult says what Remove found.
type RemoveResult struct {
	Path        string
	FileMissing bool // the row pointed at a file that was already gone (or had no path)
}

// Remove deletes the row and then its file.
func (s *Store) Remove(ctx context.Context, c catalog.Container) (RemoveResult, error) {
	panic("unimplemented")
}

// Move moves the image file of c to dest (an existing directory, or a file
// path) and updates the row; if the row update fails the file is moved back.
// Works across filesystems (copy + fsync + rename + remove).
func (s *Store) Move(ctx context.Context, c catalog.Container, dest string) (string, error) {
	panic("unimplemented")
}

// Rename gives c a new name n (its version is kept): the file moves to
// PathFor(n) and the row is updated; on failure the file is moved back.
func (s *Store) Rename(ctx context.Context, c catalog.Container, n names.Name) (string, error) {
	panic("unimplemented")
}

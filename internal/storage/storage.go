// Package storage keeps image files under the storage root consistent with the
// catalog: <root>/<collection>/<image>/<tag>@<sha256>.sif, written by temp
// file + fsync + rename, never outside the root.
//
// <collection> is names.Name.FullCollection(), so it may span several
// directories (registry, nested GitLab groups) and contain a comma (the
// GitLab job form "122059246,group"). Every directory is checked to stay
// inside the root, also after resolving symbolic links.
//
// Differences from sregistry-cli 0.2.39: files are written atomically
// (temp file in the destination directory, fsync, rename, fsync directory)
// and removed again when the catalog write fails; Remove reports a missing
// file instead of failing after deleting the row; Move and Rename refuse to
// overwrite an existing file and roll the file back when the catalog update
// fails. Directories emptied by Remove/Rename are left in place (a concurrent
// process may be about to write into them).
package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/names"
)

// ErrOutsideRoot is wrapped when a name or path would leave the storage root.
var ErrOutsideRoot = errors.New("path escapes the storage root")

// DefaultClient is the client recorded for an Add without AddOptions.Client.
const DefaultClient = "local"

// copyBufferSize is the copy and hash buffer size.
const copyBufferSize = 1 << 20

// rename is os.Rename; tests replace it to simulate cross-device moves.
var rename = os.Rename

// Store is the storage root plus the catalog that indexes it.
type Store struct {
	Root    string
	Catalog *catalog.Catalog
	Now     func() time.Time
}

// New returns a Store. root is made absolute.
func New(root string, cat *catalog.Catalog) (*Store, error) {
	if root == "" {
		return nil, errors.New("storage root is empty; set SREGISTRY_STORAGE to a directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage root %s: %w", root, err)
	}
	return &Store{Root: abs, Catalog: cat, Now: time.Now}, nil
}

// Dir returns <root>/<FullCollection>/<Image>, created (0755) if missing,
// after checking it stays inside the root.
//
// Directories are created one level at a time; a symbolic link on the way
// is followed only when it resolves inside the root, so nothing is created
// outside it. The root itself is created when missing.
func (s *Store) Dir(n names.Name) (string, error) {
	rel, err := s.checkName(n)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.Root, rel)
	realRoot, err := s.realRoot()
	if err != nil {
		return "", err
	}
	cur := s.Root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("create storage directory %s: %w; check permissions of the storage root %s", cur, err, s.Root)
			}
		case err != nil:
			return "", fmt.Errorf("storage directory %s: %w", cur, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			resolved, err := filepath.EvalSymlinks(cur)
			if err != nil {
				return "", fmt.Errorf("storage directory %s is a broken symbolic link: %w; remove it", cur, err)
			}
			if !within(realRoot, resolved) {
				return "", fmt.Errorf("storage directory for %q: %w: %s links to %s", n.URI(), ErrOutsideRoot, cur, resolved)
			}
		case !fi.IsDir():
			return "", fmt.Errorf("storage directory %s exists and is not a directory; move it out of the way", cur)
		}
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("storage directory %s: %w", dir, err)
	}
	if !within(realRoot, resolved) {
		return "", fmt.Errorf("storage directory for %q: %w: %s resolves to %s", n.URI(), ErrOutsideRoot, dir, resolved)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("storage directory %s is not a directory; move it out of the way", dir)
	}
	return dir, nil
}

// checkName validates n and returns its directory relative to the root,
// without touching the disk. Escaping names wrap ErrOutsideRoot (and
// ErrInvalid when the name is also malformed).
func (s *Store) checkName(n names.Name) (string, error) {
	rel := filepath.Join(filepath.FromSlash(n.FullCollection()), n.Image)
	escapes := !within(s.Root, filepath.Join(s.Root, rel)) ||
		strings.Contains("/"+n.FullCollection()+"/"+n.Image+"/", "/../")
	err := n.Validate()
	switch {
	case escapes && err != nil:
		return "", fmt.Errorf("storage directory for %q: %w: %w", n.URI(), ErrOutsideRoot, err)
	case escapes:
		return "", fmt.Errorf("storage directory for %q: %w", n.URI(), ErrOutsideRoot)
	case err != nil:
		return "", fmt.Errorf("storage directory for %q: %w", n.URI(), err)
	}
	return rel, nil
}

// PathFor is Dir(n)/<tag>@<version>.sif, or <tag>.sif when n.Version is empty.
func (s *Store) PathFor(n names.Name) (string, error) {
	dir, err := s.Dir(n)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, FileName(n)), nil
}

// FileName is the storage file name of n: <tag>@<version>.sif, or <tag>.sif
// without a version (sregistry-cli's _get_storage_name).
func FileName(n names.Name) string {
	if n.Version == "" {
		return n.Tag + ".sif"
	}
	return n.Tag + "@" + n.Version + ".sif"
}

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
//
// A move (o.Copy false) hard-links src into the destination directory when
// it can (same filesystem), else copies it, and removes src only after the
// row is written; on any failure src is left as it was. The row's metrics
// are o.Metrics overlaid with sregistry-cli's name fields (collection,
// image, original, registry, storage, tag, type, uri, url, version). The
// client is o.Client, or DefaultClient when empty. When only removing src
// fails, the stored row is returned with the error.
func (s *Store) Add(ctx context.Context, src string, n names.Name, o AddOptions) (catalog.Container, bool, error) {
	if _, err := s.checkName(n); err != nil {
		return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
	}
	if _, err := encodeOptions(n, "", o); err != nil {
		return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
	}
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
	}
	li, err := os.Lstat(srcAbs)
	if err != nil {
		return catalog.Container{}, false, fmt.Errorf("cannot find %s: %w", src, err)
	}
	fi, err := os.Stat(srcAbs)
	if err != nil {
		return catalog.Container{}, false, fmt.Errorf("cannot find %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return catalog.Container{}, false, fmt.Errorf("add %s: not a regular file; give the path of an image file", src)
	}
	dir, err := s.Dir(n)
	if err != nil {
		return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
	}

	var tmp, sum string
	if !o.Copy && li.Mode().IsRegular() {
		tmp = filepath.Join(dir, "."+n.Tag+".sregistry-tmp-"+randomSuffix())
		if err := os.Link(srcAbs, tmp); err != nil {
			tmp = "" // another filesystem, or links not allowed: copy instead
		} else if n.Version == "" {
			if sum, err = hashFile(ctx, tmp); err != nil {
				os.Remove(tmp)
				return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
			}
		}
	}
	if tmp == "" {
		if tmp, sum, err = copyToTemp(ctx, srcAbs, dir, n.Tag); err != nil {
			return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
		}
	}
	version := n.Version
	if version == "" {
		version = sum
	}
	final := filepath.Join(dir, FileName(n.WithVersion(version)))

	// Adding the stored file itself: keep it, only (re)write the row.
	if ffi, err := os.Stat(final); err == nil && os.SameFile(fi, ffi) {
		os.Remove(tmp)
		ct, isNew, err := s.upsert(ctx, n, version, final, o)
		if err != nil {
			return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
		}
		return ct, isNew, nil
	}

	ct, isNew, err := s.commit(ctx, tmp, final, n, version, o)
	if err != nil {
		return catalog.Container{}, false, fmt.Errorf("add %s: %w", src, err)
	}
	if !o.Copy {
		if err := os.Remove(srcAbs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ct, isNew, fmt.Errorf("added %s as %s but could not remove the source: %w; remove it by hand", src, ct.URI, err)
		}
	}
	return ct, isNew, nil
}

// Adopt registers a complete file tmp that already lives in Dir(n) and whose
// sha256 is known: it is renamed to its final name and the row upserted. On
// failure tmp is removed and no row is written.
//
// tmp is removed on failure only when it is inside Dir(n); a tmp elsewhere
// is refused and left alone. n.Version, when set, is used instead of sha256.
func (s *Store) Adopt(ctx context.Context, tmp string, n names.Name, sha256 string, o AddOptions) (catalog.Container, bool, error) {
	fail := func(err error) (catalog.Container, bool, error) {
		return catalog.Container{}, false, fmt.Errorf("adopt %s as %s: %w", tmp, n.URI(), err)
	}
	dir, err := s.Dir(n)
	if err != nil {
		return fail(err)
	}
	tmpAbs, err := filepath.Abs(tmp)
	if err != nil {
		return fail(err)
	}
	if !sameDir(filepath.Dir(tmpAbs), dir) {
		return fail(fmt.Errorf("%w: the file must be written in %s (storage.Dir)", ErrOutsideRoot, dir))
	}
	version := n.Version
	if version == "" {
		version = strings.ToLower(sha256)
	}
	if err := n.WithVersion(version).Validate(); err != nil || version == "" {
		os.Remove(tmpAbs)
		return fail(fmt.Errorf("bad sha256 %q: %w", sha256, errors.Join(err, names.ErrInvalid)))
	}
	if _, err := encodeOptions(n, version, o); err != nil {
		os.Remove(tmpAbs)
		return fail(err)
	}
	fi, err := os.Lstat(tmpAbs)
	if err != nil {
		return fail(fmt.Errorf("cannot find %s: %w", tmp, err))
	}
	if !fi.Mode().IsRegular() {
		os.Remove(tmpAbs)
		return fail(errors.New("not a regular file"))
	}
	if err := os.Chmod(tmpAbs, 0o644); err != nil {
		os.Remove(tmpAbs)
		return fail(err)
	}
	ct, isNew, err := s.commit(ctx, tmpAbs, filepath.Join(dir, FileName(n.WithVersion(version))), n, version, o)
	if err != nil {
		return fail(err)
	}
	return ct, isNew, nil
}

// commit renames tmp to final, syncs the directory and upserts the row.
// On failure tmp is gone and final is removed unless a row points at it.
func (s *Store) commit(ctx context.Context, tmp, final string, n names.Name, version string, o AddOptions) (catalog.Container, bool, error) {
	_, statErr := os.Lstat(final)
	existed := statErr == nil
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return catalog.Container{}, false, err
	}
	if err := rename(tmp, final); err != nil {
		os.Remove(tmp)
		return catalog.Container{}, false, fmt.Errorf("place %s: %w", final, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		s.discard(final, existed)
		return catalog.Container{}, false, err
	}
	ct, isNew, err := s.upsert(ctx, n, version, final, o)
	if err != nil {
		s.discard(final, existed)
		return catalog.Container{}, false, err
	}
	return ct, isNew, nil
}

// discard removes a file placed by a failed commit unless a row uses it. When
// the catalog cannot tell, the file goes only if it did not exist before.
func (s *Store) discard(final string, existed bool) {
	refs, err := s.Catalog.ImageRefs(context.Background(), final)
	if (err == nil && refs == 0) || (err != nil && !existed) {
		os.Remove(final)
	}
}

func (s *Store) upsert(ctx context.Context, n names.Name, version, final string, o AddOptions) (catalog.Container, bool, error) {
	ct, err := encodeOptions(n, version, o)
	if err != nil {
		return catalog.Container{}, false, err
	}
	ct.Image = final
	ct.CreatedAt = s.now()
	return s.Catalog.Upsert(ctx, ct)
}

// encodeOptions builds the catalog row (without image) for n at version.
func encodeOptions(n names.Name, version string, o AddOptions) (catalog.Container, error) {
	nv := n.WithVersion(version)
	m := make(map[string]any, len(o.Metrics)+10)
	for k, v := range o.Metrics {
		m[k] = v
	}
	var registry any
	if n.Registry != "" {
		registry = n.Registry
	}
	original := n.Original
	if original == "" {
		original = n.URI()
	}
	m["collection"] = n.Collection
	m["image"] = n.Image
	m["original"] = original
	m["registry"] = registry
	m["storage"] = nv.URI() + ".sif"
	m["tag"] = n.Tag
	m["type"] = "container"
	m["uri"] = nv.URI()
	m["url"] = nv.URL()
	m["version"] = version
	metrics, err := json.Marshal(m)
	if err != nil {
		return catalog.Container{}, fmt.Errorf("encode metrics: %w", err)
	}
	var pull json.RawMessage
	if o.Pull != nil {
		if pull, err = json.Marshal(o.Pull); err != nil {
			return catalog.Container{}, fmt.Errorf("encode pull metadata: %w", err)
		}
	}
	client := o.Client
	if client == "" {
		client = DefaultClient
	}
	url := o.URL
	if url == "" {
		url = nv.URL()
	}
	return catalog.Container{
		Collection: nv.FullCollection(),
		Name:       nv.Image,
		Tag:        nv.Tag,
		Version:    version,
		URL:        url,
		URI:        nv.URI(),
		Client:     client,
		Metrics:    metrics,
		Pull:       pull,
	}, nil
}

// RemoveResult says what Remove found.
type RemoveResult struct {
	Path        string
	FileMissing bool // the row pointed at a file that was already gone (or had no path)
	Kept        bool // another row still points at the file, so it was left in place
}

// Remove deletes the row and then its file.
//
// The file removed is exactly the row's image path, even outside the root
// (after `mv` it is where the user moved the image, and `rm` means it). A file
// still used by another row is kept. A file that is already gone is reported
// in FileMissing, not as an error.
func (s *Store) Remove(ctx context.Context, c catalog.Container) (RemoveResult, error) {
	res := RemoveResult{Path: c.Image}
	if err := s.Catalog.Delete(ctx, c.ID); err != nil {
		return res, fmt.Errorf("rm %s: %w", c.URI, err)
	}
	if c.Image == "" {
		res.FileMissing = true
		return res, nil
	}
	refs, err := s.Catalog.ImageRefs(ctx, c.Image)
	if err != nil {
		return res, fmt.Errorf("rm %s: row deleted, file %s kept: %w", c.URI, c.Image, err)
	}
	if refs > 0 {
		res.Kept = true
		return res, nil
	}
	fi, err := os.Lstat(c.Image)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.FileMissing = true
		return res, nil
	case err != nil:
		return res, fmt.Errorf("rm %s: row deleted, but %s: %w; remove the file by hand", c.URI, c.Image, err)
	case fi.IsDir():
		return res, fmt.Errorf("rm %s: row deleted, but %s is a directory, not an image; remove it by hand if unwanted", c.URI, c.Image)
	}
	if err := os.Remove(c.Image); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			res.FileMissing = true
			return res, nil
		}
		return res, fmt.Errorf("rm %s: row deleted, but removing %s failed: %w; remove the file by hand", c.URI, c.Image, err)
	}
	return res, nil
}

// Move moves the image file of c to dest (an existing directory, or a file
// path) and updates the row; if the row update fails the file is moved back.
// Works across filesystems (copy + fsync + rename + remove).
//
// Unlike the original, an existing destination file is not overwritten.
func (s *Store) Move(ctx context.Context, c catalog.Container, dest string) (string, error) {
	src, err := s.imageOf(c)
	if err != nil {
		return "", fmt.Errorf("mv %s: %w", c.URI, err)
	}
	dst, err := filepath.Abs(dest)
	if err != nil {
		return "", fmt.Errorf("mv %s: %w", c.URI, err)
	}
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		dst = filepath.Join(dst, filepath.Base(src))
	} else {
		parent := filepath.Dir(dst)
		if pfi, err := os.Stat(parent); err != nil || !pfi.IsDir() {
			return "", fmt.Errorf("%s does not exist. Ensure exists first.", parent)
		}
	}
	if err := checkFree(src, dst); err != nil {
		return "", err
	}
	if err := moveFile(src, dst); err != nil {
		return "", fmt.Errorf("mv %s: cannot move %s to %s: %w", c.URI, src, dst, err)
	}
	if err := s.Catalog.SetImage(ctx, c.ID, dst); err != nil {
		return "", rollback(fmt.Errorf("mv %s: %w", c.URI, err), dst, src)
	}
	return dst, nil
}

// Rename gives c a new name n (its version is kept): the file moves to
// PathFor(n) and the row is updated; on failure the file is moved back.
//
// The row's metrics keep the names of the original add.
func (s *Store) Rename(ctx context.Context, c catalog.Container, n names.Name) (string, error) {
	nv := n.WithVersion(c.Version)
	if err := nv.Validate(); err != nil {
		return "", fmt.Errorf("rename %s: %w", c.URI, err)
	}
	src, err := s.imageOf(c)
	if err != nil {
		return "", fmt.Errorf("rename %s: %w; pull %s and then rename it", c.URI, err, c.URI)
	}
	dst, err := s.PathFor(nv)
	if err != nil {
		return "", fmt.Errorf("rename %s: %w", c.URI, err)
	}
	if err := checkFree(src, dst); err != nil {
		return "", err
	}
	if err := moveFile(src, dst); err != nil {
		return "", fmt.Errorf("rename %s: cannot move %s to %s: %w", c.URI, src, dst, err)
	}
	if err := s.Catalog.Rename(ctx, c.ID, nv.FullCollection(), nv.Image, nv.Tag, nv.URI(), dst); err != nil {
		return "", rollback(fmt.Errorf("rename %s to %s: %w", c.URI, nv.URI(), err), dst, src)
	}
	return dst, nil
}

// imageOf returns the absolute image path of c, which must exist.
func (s *Store) imageOf(c catalog.Container) (string, error) {
	if c.Image == "" {
		return "", errors.New("the catalog has no image file for it")
	}
	src, err := filepath.Abs(c.Image)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(src); err != nil {
		return "", fmt.Errorf("cannot find %s: %w", src, err)
	}
	return src, nil
}

// checkFree refuses a destination that is the source or already exists.
func checkFree(src, dst string) error {
	if src == dst {
		return fmt.Errorf("%s is already the name.", dst)
	}
	dfi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if sfi, err := os.Lstat(src); err == nil && os.SameFile(sfi, dfi) {
		return fmt.Errorf("%s is already the name.", dst)
	}
	return fmt.Errorf("%s already exists; remove it first or choose another name", dst)
}

// rollback moves dst back to src after a failed catalog update.
func rollback(err error, dst, src string) error {
	if rerr := moveFile(dst, src); rerr != nil {
		return errors.Join(err, fmt.Errorf("moving the file back also failed: %w; move %s to %s by hand", rerr, dst, src))
	}
	return fmt.Errorf("%w (the file was moved back to %s)", err, src)
}

// moveFile renames src to dst, or copies across filesystems (temp file in
// dst's directory, fsync, rename, fsync) and then removes src.
func moveFile(src, dst string) error {
	err := rename(src, dst)
	if err == nil {
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return err
		}
		return syncDir(filepath.Dir(src))
	}
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	tmp, _, err := copyToTemp(context.Background(), src, filepath.Dir(dst), strings.TrimSuffix(filepath.Base(dst), ".sif"))
	if err != nil {
		return err
	}
	if fi, err := os.Stat(src); err == nil {
		os.Chmod(tmp, fi.Mode().Perm())
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := os.Remove(src); err != nil {
		os.Remove(dst)
		return err
	}
	return nil
}

// copyToTemp copies src into a new temp file in dir, hashing it on the way,
// and fsyncs it. On error nothing is left behind.
func copyToTemp(ctx context.Context, src, dir, tag string) (tmp, sum string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", fmt.Errorf("cannot find %s: %w", src, err)
	}
	defer in.Close()
	f, err := os.CreateTemp(dir, "."+tag+".sregistry-tmp-*")
	if err != nil {
		return "", "", fmt.Errorf("create temp file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err = io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, in}, make([]byte, copyBufferSize)); err != nil {
		return "", "", fmt.Errorf("copy %s to %s: %w", src, dir, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return "", "", err
	}
	if err = f.Sync(); err != nil {
		return "", "", fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err = f.Close(); err != nil {
		return "", "", fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// hashFile returns the sha256 of path and fsyncs it.
func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, copyBufferSize)); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func (s *Store) realRoot() (string, error) {
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		return "", fmt.Errorf("create storage root %s: %w; set SREGISTRY_STORAGE to a writable directory", s.Root, err)
	}
	r, err := filepath.EvalSymlinks(s.Root)
	if err != nil {
		return "", fmt.Errorf("storage root %s: %w", s.Root, err)
	}
	return r, nil
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// within reports whether p is root or below it (both clean and absolute).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && !filepath.IsAbs(rel) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package gitlab

import (
	"archive/zip"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/sregistry/sregistry/internal/names"
)

// normArtifactPath cleans an artifact path as written by a user or found in
// a zip: no leading "./" or "/", forward slashes.
func normArtifactPath(p string) string {
	p = strings.ReplaceAll(strings.TrimSpace(p), "\\", "/")
	for strings.HasPrefix(p, "./") {
		p = p[2:]
	}
	return strings.TrimLeft(p, "/")
}

// candidatesFor lists the artifact paths to try for a tag, in order: the
// names package's candidates (.sif before .simg) for the tag as given,
// then for its lower-cased form when different (the original lower-cased
// tags, so recipes like Singularity.Dev could never be fetched).
func candidatesFor(folder, tag string) []string {
	out := names.ArtifactCandidates(folder, tag)
	if l := strings.ToLower(tag); l != tag {
		for _, c := range names.ArtifactCandidates(folder, l) {
			if !contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// choice is the outcome of chooseArtifact.
type choice struct {
	Path string
	// Only is set when no candidate matched and the only image file in the
	// folder was taken instead (tag "latest" only).
	Only bool
}

// chooseArtifact picks the artifact among the files present in a job's
// archive: the explicit path when given, else the first candidate present,
// else — for the "latest" tag only — the single image file of the folder.
func chooseArtifact(available []string, explicit string, candidates []string, folder string, latest bool) (choice, bool) {
	set := make(map[string]bool, len(available))
	for _, a := range available {
		set[normArtifactPath(a)] = true
	}
	if explicit != "" {
		e := normArtifactPath(explicit)
		return choice{Path: e}, set[e]
	}
	for _, c := range candidates {
		if set[c] {
			return choice{Path: c}, true
		}
	}
	// Tags are lower-cased (as sregistry-cli did) but file names keep their
	// case: "dev" must still find Singularity.Dev.sif. An exact match wins;
	// a case-insensitive one is taken only when it is unambiguous.
	for _, c := range candidates {
		var found []string
		for _, a := range available {
			if a = normArtifactPath(a); strings.EqualFold(a, c) {
				found = append(found, a)
			}
		}
		if len(found) == 1 {
			return choice{Path: found[0]}, true
		}
	}
	if !latest {
		return choice{}, false
	}
	prefix := strings.Trim(folder, "/") + "/"
	var inFolder []string
	for _, a := range imagesIn(available) {
		if folder == "" || strings.HasPrefix(a, prefix) {
			inFolder = append(inFolder, a)
		}
	}
	if len(inFolder) == 1 {
		return choice{Path: inFolder[0], Only: true}, true
	}
	return choice{}, false
}

// imagesIn returns the sorted image files (.sif/.simg) among paths.
func imagesIn(paths []string) []string {
	var out []string
	for _, p := range paths {
		p = normArtifactPath(p)
		if isImagePath(p) && !contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// notFoundErr explains that no artifact matched, listing what was tried and,
// when known, the image files the job does have.
func notFoundErr(jobID int64, project string, tried []string, images []string, known bool) error {
	msg := fmt.Sprintf("no matching image in the artifacts of job %d of %s: tried %s", jobID, project, strings.Join(tried, ", "))
	switch {
	case !known:
		msg += "; this GitLab cannot list artifact files (needs 18.8+): open the job's artifacts browser and pass the image path with --artifact"
	case len(images) == 0:
		msg += "; the job's artifacts contain no .sif or .simg file: check SREGISTRY_GITLAB_FOLDER and the job's artifacts:paths"
	default:
		msg += fmt.Sprintf("; image files in the job: %s: pass one with --artifact or use its tag", strings.Join(images, ", "))
	}
	return errors.New(msg)
}

// zipEntries indexes a zip's regular files by normalised path.
func zipEntries(zr *zip.Reader) (map[string]*zip.File, []string) {
	m := make(map[string]*zip.File, len(zr.File))
	var paths []string
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasSuffix(f.Name, "/") {
			continue
		}
		p := normArtifactPath(f.Name)
		if _, dup := m[p]; dup {
			continue // first wins, like GitLab's metadata
		}
		m[p] = f
		paths = append(paths, p)
	}
	return m, paths
}

// inflated is the result of inflate.
type inflated struct {
	Path   string
	Size   int64
	SHA256 string
	CRC32  uint32
}

// inflate decompresses the raw DEFLATE stream in src into a new temp file in
// dir, computing size, sha256 and CRC-32 in one pass. It stops at limit bytes
// (the size the zip directory declares), so a crafted entry cannot fill the
// disk. On error nothing is left.
func inflate(src, dir string, limit int64) (_ *inflated, err error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".sregistry-inflate-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create a temp file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	sh, crc := sha256.New(), crc32.NewIEEE()
	fr := flate.NewReader(in)
	defer fr.Close()
	n, err := io.Copy(io.MultiWriter(out, sh, crc), io.LimitReader(fr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", path.Base(src), err)
	}
	if n > limit {
		return nil, fmt.Errorf("decompress %s: the entry inflates to more than the %d bytes the archive declares", path.Base(src), limit)
	}
	if err = out.Sync(); err != nil {
		return nil, fmt.Errorf("write %s: %w", out.Name(), err)
	}
	if err = out.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", out.Name(), err)
	}
	return &inflated{Path: out.Name(), Size: n, SHA256: hex.EncodeToString(sh.Sum(nil)), CRC32: crc.Sum32()}, nil
}

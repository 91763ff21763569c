// Package names parses image names and URIs the way sregistry-cli did, with
// fixes: nested GitLab groups keep their full path and no name can escape the
// storage root.
package names

import "errors"

// ErrInvalid is wrapped by every parse or validation error.
var ErrInvalid = errors.New("invalid image name")

// Name is a parsed image name: [registry/]collection/image:tag[@version].
type Name struct {
	Registry   string // host[:port] when the first segment looks like one ("docker.io", "localhost:5000"), else ""
	Collection string // every path segment before the image, '/'-joined (nested groups kept); "library" by default
	Image      string // the last path segment
	Tag        string // "latest" by default
	Version    string // "" when absent (the catalog uses the file's sha256)
	Original   string // the input as given
}

// Parse parses an image name (without URI scheme; see SplitScheme).
func Parse(s string) (Name, error) { panic("unimplemented") }

// FullCollection is Registry + "/" + Collection, or Collection when there is no registry.
// It is the catalog's collection name and the first storage directory level(s).
func (n Name) FullCollection() string { panic("unimplemented") }

// URL is FullCollection()/Image.
func (n Name) URL() string { panic("unimplemented") }

// URI is URL():Tag, plus @Version when Version is set.
func (n Name) URI() string { panic("unimplemented") }

// WithVersion returns a copy with Version set (lower-cased).
func (n Name) WithVersion(v string) Name { panic("unimplemented") }

// SplitScheme splits "gitlab://x" into ("gitlab", "x"). The scheme is lower-cased
// and '_' becomes '-'; any scheme containing "shub" is "hub". Without "://" scheme is "".
func SplitScheme(s string) (scheme, rest string) { panic("unimplemented") }

// TagFromArtifact derives a tag from an artifact file path:
// Singularity.sif / Singularity.simg -> "latest"; Singularity.<tag>.sif|.simg -> <tag>;
// any other <stem>.sif|.simg|.img -> <stem> (lower-cased, sanitised).
func TagFromArtifact(path string) string { panic("unimplemented") }

// ArtifactCandidates lists the artifact paths to try for a tag, in order:
// <folder>/Singularity.sif, <folder>/Singularity.simg for "latest";
// <folder>/Singularity.<tag>.sif, <folder>/Singularity.<tag>.simg, <folder>/<tag>.sif, <folder>/<tag>.simg otherwise.
func ArtifactCandidates(folder, tag string) []string { panic("unimplemented") }

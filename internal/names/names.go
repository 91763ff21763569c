// Package names parses image names and URIs the way sregistry-cli did, with
// fixes: nested GitLab groups keep their full path and no name can escape the
// storage root.
//
// Differences from sregistry-cli 0.2.39 (parse_image_name), all deliberate:
//   - Nested groups: "group/sub/proj" is Collection "group/sub", Image "proj";
//     the original made "group" a registry, so "a/sub/p" and "x/sub/p" shared
//     a storage directory. A first segment is a registry only when it looks
//     like a host ('.' or ':' in it, or "localhost").
//   - Extensions: ".img", ".simg" and ".sif" are removed only as a suffix of
//     the image segment, not anywhere in the string, so "my.sifted/tool" and
//     "foo:v1.sif" keep their names.
//   - Validation: names that could leave the storage root or break a file
//     name ("..", leading '/', NUL and other control characters, backslash,
//     segments starting with '-', tags outside [a-z0-9._-]) are rejected with
//     an error wrapping ErrInvalid.
package names

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every parse or validation error.
var ErrInvalid = errors.New("invalid image name")

// MaxFieldLen is the longest accepted registry, collection, image, tag or
// version (the catalog's VARCHAR(250) columns).
const MaxFieldLen = 250

// DefaultCollection and DefaultTag are used when a name does not give them.
const (
	DefaultCollection = "library"
	DefaultTag        = "latest"
)

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
func Parse(s string) (Name, error) {
	n := Name{Original: s}
	if err := checkChars(s); err != nil {
		return Name{}, err
	}
	if strings.HasPrefix(s, "/") {
		return Name{}, invalidf(s, "it must not start with '/'; give collection/image[:tag], not a file path")
	}

	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		n.Version = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if n.Version == "" {
			return Name{}, invalidf(s, "the version after '@' is empty")
		}
	}
	slash := strings.LastIndexByte(rest, '/')
	if i := strings.LastIndexByte(rest, ':'); i > slash {
		n.Tag = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if n.Tag == "" {
			return Name{}, invalidf(s, "the tag after ':' is empty")
		}
	} else {
		n.Tag = DefaultTag
	}

	segs := strings.Split(rest, "/")
	last := len(segs) - 1
	segs[last] = trimImageExt(segs[last])
	switch {
	case len(segs) == 1:
		n.Collection = DefaultCollection
	case len(segs) == 2 && (strings.Contains(segs[0], ":") || segs[0] == "localhost"):
		// "localhost:5000/foo" is a registry and an image (sregistry-cli's
		// vector). A dotted first segment is not taken for a host here:
		// "my.group/proj" is a GitLab project (dots are common in group
		// paths), and reading it as a registry would rename it
		// "my.group/library/proj".
		n.Registry = segs[0]
		n.Collection = DefaultCollection
	case len(segs) > 2 && looksLikeRegistry(segs[0]):
		n.Registry = segs[0]
		n.Collection = strings.ToLower(strings.Join(segs[1:last], "/"))
	default:
		n.Collection = strings.ToLower(strings.Join(segs[:last], "/"))
	}
	n.Image = strings.ToLower(segs[last])

	for i, seg := range segs {
		if strings.Contains(seg, ":") && !(i == 0 && n.Registry != "") {
			return Name{}, unparsable(s)
		}
	}
	if err := n.Validate(); err != nil {
		return Name{}, err
	}
	return n, nil
}

// Validate checks every field of n the way Parse does, so hand-built names
// (and names read back from a catalog) can be checked before they become
// paths. The error wraps ErrInvalid.
func (n Name) Validate() error {
	label := n.Original
	if label == "" {
		label = n.URI()
	}
	if n.Registry != "" {
		if err := checkSegment(label, "registry", n.Registry); err != nil {
			return err
		}
	}
	if n.Collection == "" {
		return invalidf(label, "the collection is empty")
	}
	if len(n.Collection) > MaxFieldLen {
		return invalidf(label, "the collection is longer than %d characters", MaxFieldLen)
	}
	for _, seg := range strings.Split(n.Collection, "/") {
		if err := checkSegment(label, "collection", seg); err != nil {
			return err
		}
		if strings.Contains(seg, ":") {
			return unparsable(label)
		}
	}
	if err := checkSegment(label, "image", n.Image); err != nil {
		return err
	}
	if strings.ContainsAny(n.Image, ":/") {
		return unparsable(label)
	}
	if err := checkTag(label, "tag", n.Tag); err != nil {
		return err
	}
	if n.Version != "" {
		if err := checkTag(label, "version", n.Version); err != nil {
			return err
		}
	}
	return nil
}

// FullCollection is Registry + "/" + Collection, or Collection when there is no registry.
// It is the catalog's collection name and the first storage directory level(s).
func (n Name) FullCollection() string {
	if n.Registry == "" {
		return n.Collection
	}
	return n.Registry + "/" + n.Collection
}

// URL is FullCollection()/Image.
func (n Name) URL() string { return n.FullCollection() + "/" + n.Image }

// URI is URL():Tag, plus @Version when Version is set.
func (n Name) URI() string {
	u := n.URL() + ":" + n.Tag
	if n.Version != "" {
		u += "@" + n.Version
	}
	return u
}

// WithVersion returns a copy with Version set (lower-cased).
func (n Name) WithVersion(v string) Name {
	n.Version = strings.ToLower(v)
	return n
}

// SplitScheme splits "gitlab://x" into ("gitlab", "x"). The scheme is lower-cased
// and '_' becomes '-'; any scheme containing "shub" is "hub". Without "://" scheme is "".
//
// Unlike the original's greedy `^.+://`, the split is at the first "://", and
// only when what precedes it looks like a scheme (a letter, then letters,
// digits, '+', '.', '_' or '-'); otherwise the input is returned unchanged.
func SplitScheme(s string) (scheme, rest string) {
	i := strings.Index(s, "://")
	if i <= 0 || !isScheme(s[:i]) {
		return "", s
	}
	scheme = strings.ReplaceAll(strings.ToLower(s[:i]), "_", "-")
	if strings.Contains(scheme, "shub") {
		scheme = "hub"
	}
	return scheme, s[i+3:]
}

// TagFromArtifact derives a tag from an artifact file path:
// Singularity.sif / Singularity.simg -> "latest"; Singularity.<tag>.sif|.simg -> <tag>;
// any other <stem>.sif|.simg|.img -> <stem> (lower-cased, sanitised).
//
// Sanitising lower-cases, replaces every character outside [a-z0-9._-] with
// '-', trims leading '.' and '-' and cuts to MaxFieldLen; an empty result is
// "latest". "Singularity" is matched case-insensitively.
func TagFromArtifact(p string) string {
	base := p
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	for _, ext := range []string{".sif", ".simg"} {
		stem, ok := cutSuffixFold(base, ext)
		if !ok {
			continue
		}
		if strings.EqualFold(stem, "Singularity") {
			return DefaultTag
		}
		if len(stem) > len("Singularity.") && strings.EqualFold(stem[:len("Singularity.")], "Singularity.") {
			return SanitizeTag(stem[len("Singularity."):])
		}
		return SanitizeTag(stem)
	}
	if stem, ok := cutSuffixFold(base, ".img"); ok {
		return SanitizeTag(stem)
	}
	return SanitizeTag(base)
}

// SanitizeTag turns s into a valid tag: lower-cased, characters outside
// [a-z0-9._-] replaced by '-', leading '.'/'-' trimmed, at most MaxFieldLen
// bytes; "latest" when nothing is left.
func SanitizeTag(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if isTagChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	t := strings.TrimLeft(b.String(), ".-")
	if len(t) > MaxFieldLen {
		t = t[:MaxFieldLen]
	}
	if t == "" {
		return DefaultTag
	}
	return t
}

// ArtifactCandidates lists the artifact paths to try for a tag, in order:
// <folder>/Singularity.sif, <folder>/Singularity.simg for "latest";
// <folder>/Singularity.<tag>.sif, <folder>/Singularity.<tag>.simg, <folder>/<tag>.sif, <folder>/<tag>.simg otherwise.
//
// An empty tag means "latest"; an empty folder gives bare file names. Paths
// use '/' (they are paths inside an artifacts archive).
func ArtifactCandidates(folder, tag string) []string {
	var files []string
	if tag == "" || tag == DefaultTag {
		files = []string{"Singularity.sif", "Singularity.simg"}
	} else {
		files = []string{
			"Singularity." + tag + ".sif",
			"Singularity." + tag + ".simg",
			tag + ".sif",
			tag + ".simg",
		}
	}
	folder = strings.Trim(folder, "/")
	if folder == "" {
		return files
	}
	for i, f := range files {
		files[i] = path.Join(folder, f)
	}
	return files
}

// looksLikeRegistry reports whether a first path segment names a host.
func looksLikeRegistry(seg string) bool {
	return strings.ContainsAny(seg, ".:") || seg == "localhost"
}

// trimImageExt removes one .sif, .simg or .img suffix (any case).
func trimImageExt(seg string) string {
	for _, ext := range []string{".sif", ".simg", ".img"} {
		if stem, ok := cutSuffixFold(seg, ext); ok {
			return stem
		}
	}
	return seg
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

func checkChars(s string) error {
	if s == "" {
		return invalidf(s, "the name is empty; give collection/image[:tag]")
	}
	if !utf8.ValidString(s) {
		return invalidf(s, "it is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return invalidf(s, "it contains the control character %U", r)
		case r == '\\':
			return invalidf(s, "it contains a backslash; use '/' between collection and image")
		}
	}
	return nil
}

func checkSegment(label, field, seg string) error {
	if err := checkChars(seg); err != nil {
		return invalidf(label, "the %s %q is invalid (empty, or with control characters or a backslash)", field, seg)
	}
	switch {
	case len(seg) > MaxFieldLen:
		return invalidf(label, "the %s is longer than %d characters", field, MaxFieldLen)
	case seg == "." || seg == "..":
		return invalidf(label, "the %s %q is not allowed", field, seg)
	case strings.HasPrefix(seg, "-"):
		return invalidf(label, "the %s %q must not start with '-'", field, seg)
	case strings.ContainsAny(seg, "@/"):
		return invalidf(label, "the %s %q must not contain '@' or '/'", field, seg)
	}
	return nil
}

// checkTag accepts [a-z0-9._-], starting with a letter, digit or '_'.
func checkTag(label, field, t string) error {
	if t == "" {
		return invalidf(label, "the %s is empty", field)
	}
	if len(t) > MaxFieldLen {
		return invalidf(label, "the %s is longer than %d characters", field, MaxFieldLen)
	}
	for _, r := range t {
		if !isTagChar(r) {
			return invalidf(label, "the %s %q may only contain a-z, 0-9, '.', '_' and '-'", field, t)
		}
	}
	if t[0] == '.' || t[0] == '-' {
		return invalidf(label, "the %s %q must start with a letter, digit or '_'", field, t)
	}
	return nil
}

func isTagChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '.' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return s != ""
}

func invalidf(name, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrInvalid, name, fmt.Sprintf(format, args...))
}

func unparsable(name string) error {
	return fmt.Errorf("%w: could not parse image %q; use [registry/]collection/image[:tag][@version]", ErrInvalid, name)
}

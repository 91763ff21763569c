package names

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in                                  string
		registry, collection, image, tag, version string
		uri, fullCollection                       string
	}{
		// The observed vectors of sregistry-cli 0.2.39 (spec section 3).
		{"bare image", "ubuntu", "", "library", "ubuntu", "latest", "", "library/ubuntu:latest", "library"},
		{"collection/image", "singularityhub/gitlab-ci", "", "singularityhub", "gitlab-ci", "latest", "", "singularityhub/gitlab-ci:latest", "singularityhub"},
		{"tag lower-cased", "singularityhub/gitlab-ci:Dev", "", "singularityhub", "gitlab-ci", "dev", "", "singularityhub/gitlab-ci:dev", "singularityhub"},
		{"gitlab job id form", "122059246,singularityhub/gitlab-ci", "", "122059246,singularityhub", "gitlab-ci", "latest", "", "122059246,singularityhub/gitlab-ci:latest", "122059246,singularityhub"},
		{"gitlab job id and job name", "122059246,singularityhub/gitlab-ci,build", "", "122059246,singularityhub", "gitlab-ci,build", "latest", "", "122059246,singularityhub/gitlab-ci,build:latest", "122059246,singularityhub"},
		{"gitlab form with version", "122059246,singularityhub/gitlab-ci:latest@a0e5", "", "122059246,singularityhub", "gitlab-ci", "latest", "a0e5", "122059246,singularityhub/gitlab-ci:latest@a0e5", "122059246,singularityhub"},
		{"version", "vsoch/hello-world:latest@abc", "", "vsoch", "hello-world", "latest", "abc", "vsoch/hello-world:latest@abc", "vsoch"},
		{"everything lower-cased", "UPPER/Case:TAG@ABC", "", "upper", "case", "tag", "abc", "upper/case:tag@abc", "upper"},
		{"docker registry", "docker.io/library/ubuntu:18.04", "docker.io", "library", "ubuntu", "18.04", "", "docker.io/library/ubuntu:18.04", "docker.io/library"},
		{"registry with port, two segments", "localhost:5000/foo", "localhost:5000", "library", "foo", "latest", "", "localhost:5000/library/foo:latest", "localhost:5000/library"},
		{"localhost registry", "localhost/foo", "localhost", "library", "foo", "latest", "", "localhost/library/foo:latest", "localhost/library"},
		{"registry with collection", "localhost:5000/me/foo:v1", "localhost:5000", "me", "foo", "v1", "", "localhost:5000/me/foo:v1", "localhost:5000/me"},
		{"nested group kept (fix)", "group/sub/proj", "", "group/sub", "proj", "latest", "", "group/sub/proj:latest", "group/sub"},
		{"three segments with tag (fix)", "a/b/c:t", "", "a/b", "c", "t", "", "a/b/c:t", "a/b"},
		{"deep nested group", "g/s1/s2/p:v2@ff", "", "g/s1/s2", "p", "v2", "ff", "g/s1/s2/p:v2@ff", "g/s1/s2"},
		{"dotted first segment is a registry", "my.group/sub/p", "my.group", "sub", "p", "latest", "", "my.group/sub/p:latest", "my.group/sub"},
		{"simg suffix removed", "foo.simg", "", "library", "foo", "latest", "", "library/foo:latest", "library"},
		{"sif suffix before tag", "foo/bar.sif:v1", "", "foo", "bar", "v1", "", "foo/bar:v1", "foo"},
		{"img suffix any case", "foo/bar.IMG", "", "foo", "bar", "latest", "", "foo/bar:latest", "foo"},
		{"sif inside a name kept (fix)", "my.sifted/tool", "", "my.sifted", "tool", "latest", "", "my.sifted/tool:latest", "my.sifted"},
		{"dotted GitLab group, two segments (fix)", "my.group/proj:Dev", "", "my.group", "proj", "dev", "", "my.group/proj:dev", "my.group"},
		{"sif inside collection kept", "a.sif.x/b/c", "a.sif.x", "b", "c", "latest", "", "a.sif.x/b/c:latest", "a.sif.x/b"},
		{"sif in tag kept", "foo:v1.sif", "", "library", "foo", "v1.sif", "", "library/foo:v1.sif", "library"},
		{"underscore tag", "a/b:my_tag-1.0", "", "a", "b", "my_tag-1.0", "", "a/b:my_tag-1.0", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			want := Name{Registry: tt.registry, Collection: tt.collection, Image: tt.image, Tag: tt.tag, Version: tt.version, Original: tt.in}
			if n != want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, n, want)
			}
			if got := n.URI(); got != tt.uri {
				t.Errorf("URI() = %q, want %q", got, tt.uri)
			}
			if got := n.FullCollection(); got != tt.fullCollection {
				t.Errorf("FullCollection() = %q, want %q", got, tt.fullCollection)
			}
			if got, want := n.URL(), tt.fullCollection+"/"+tt.image; got != want {
				t.Errorf("URL() = %q, want %q", got, want)
			}
			if err := n.Validate(); err != nil {
				t.Errorf("Validate() of a parsed name: %v", err)
			}
		})
	}
}

func TestParseNoCollisions(t *testing.T) {
	a, err := Parse("my.group/sub/p")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("x/sub/p")
	if err != nil {
		t.Fatal(err)
	}
	if a.FullCollection() == b.FullCollection() {
		t.Errorf("my.group/sub/p and x/sub/p share the collection %q", a.FullCollection())
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "empty"},
		{"three colons", "a:b:c", `could not parse image "a:b:c"`},
		{"colon in a middle segment", "a/b:c/d", "could not parse image"},
		{"leading slash", "/etc/passwd", "must not start with '/'"},
		{"dot dot collection", "../x", `".."`},
		{"dot dot in the middle", "a/../b", `".."`},
		{"dot segment", "./x", `"."`},
		{"dot dot image", "a/..", `".."`},
		{"empty segment", "a//b", "invalid"},
		{"trailing slash", "a/b/", "invalid"},
		{"NUL", "a/b\x00c", "control character"},
		{"newline", "a/b\nc", "control character"},
		{"DEL", "a/b\x7f", "control character"},
		{"backslash", `a\b`, "backslash"},
		{"leading dash collection", "-rf/x", "must not start with '-'"},
		{"leading dash image", "a/-x", "must not start with '-'"},
		{"empty tag", "a/b:", "tag after ':' is empty"},
		{"empty version", "a/b:t@", "version after '@' is empty"},
		{"bad tag char", "a/b:t+1", "may only contain"},
		{"tag starting with dot", "a/b:.hidden", "must start with"},
		{"version with slash", "a/b@c/d", "may only contain"},
		{"only extension", ".sif", "invalid"},
		{"overlong image", "a/" + strings.Repeat("x", 251), "longer than 250"},
		{"overlong tag", "a/b:" + strings.Repeat("x", 251), "longer than 250"},
		{"overlong collection", strings.Repeat("c", 251) + "/b", "longer than 250"},
		{"invalid utf8", "a/\xff", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, n)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidateHandBuilt(t *testing.T) {
	tests := []struct {
		name string
		n    Name
		ok   bool
	}{
		{"good", Name{Collection: "a/b", Image: "c", Tag: "t", Version: "v"}, true},
		{"escaping collection", Name{Collection: "../..", Image: "c", Tag: "t"}, false},
		{"absolute collection", Name{Collection: "/etc", Image: "c", Tag: "t"}, false},
		{"image with slash", Name{Collection: "a", Image: "b/c", Tag: "t"}, false},
		{"tag with slash", Name{Collection: "a", Image: "b", Tag: "../t"}, false},
		{"version dot dot", Name{Collection: "a", Image: "b", Tag: "t", Version: ".."}, false},
		{"no tag", Name{Collection: "a", Image: "b"}, false},
		{"registry with slash", Name{Registry: "a/b", Collection: "c", Image: "d", Tag: "t"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestWithVersion(t *testing.T) {
	n, err := Parse("a/b:c")
	if err != nil {
		t.Fatal(err)
	}
	v := n.WithVersion("ABCDEF")
	if v.Version != "abcdef" || n.Version != "" {
		t.Errorf("WithVersion: got %q (original now %q)", v.Version, n.Version)
	}
	if got, want := v.URI(), "a/b:c@abcdef"; got != want {
		t.Errorf("URI() = %q, want %q", got, want)
	}
}

func TestSplitScheme(t *testing.T) {
	tests := []struct {
		name, in, scheme, rest string
	}{
		{"gitlab", "gitlab://group/proj", "gitlab", "group/proj"},
		{"upper case", "GITLAB://x", "gitlab", "x"},
		{"underscore", "google_storage://x", "google-storage", "x"},
		{"shub", "shub://vsoch/hello", "hub", "vsoch/hello"},
		{"anything with shub", "myshub2://x", "hub", "x"},
		{"no scheme", "group/proj:tag", "", "group/proj:tag"},
		{"registry port is no scheme", "localhost:5000/foo", "", "localhost:5000/foo"},
		{"first separator wins", "gitlab://https://x", "gitlab", "https://x"},
		{"not a scheme", "a/b://c", "", "a/b://c"},
		{"empty scheme", "://x", "", "://x"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme, rest := SplitScheme(tt.in)
			if scheme != tt.scheme || rest != tt.rest {
				t.Errorf("SplitScheme(%q) = (%q, %q), want (%q, %q)", tt.in, scheme, rest, tt.scheme, tt.rest)
			}
		})
	}
}

func TestTagFromArtifact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"default sif", "Singularity.sif", "latest"},
		{"default simg", "build/Singularity.simg", "latest"},
		{"tagged sif", "build/Singularity.dev.sif", "dev"},
		{"tagged simg", "Singularity.goober.simg", "goober"},
		{"tag lower-cased", "Singularity.Dev.sif", "dev"},
		{"dotted tag", "Singularity.v1.2.sif", "v1.2"},
		{"plain stem", "out/myimage.sif", "myimage"},
		{"img stem", "thing.img", "thing"},
		{"sanitised", "build/My Image+1.sif", "my-image-1"},
		{"leading dot trimmed", ".hidden.sif", "hidden"},
		{"nothing left", "++.sif", "latest"},
		{"no extension", "README", "readme"},
		{"case-insensitive singularity", "singularity.SIF", "latest"},
		{"long", strings.Repeat("a", 300) + ".sif", strings.Repeat("a", 250)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TagFromArtifact(tt.in)
			if got != tt.want {
				t.Errorf("TagFromArtifact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if err := checkTag(tt.in, "tag", got); err != nil {
				t.Errorf("result %q is not a valid tag: %v", got, err)
			}
		})
	}
}

func TestArtifactCandidates(t *testing.T) {
	tests := []struct {
		name, folder, tag string
		want              []string
	}{
		{"latest", "build", "latest", []string{"build/Singularity.sif", "build/Singularity.simg"}},
		{"empty tag is latest", "build", "", []string{"build/Singularity.sif", "build/Singularity.simg"}},
		{"tag", "build", "dev", []string{"build/Singularity.dev.sif", "build/Singularity.dev.simg", "build/dev.sif", "build/dev.simg"}},
		{"no folder", "", "latest", []string{"Singularity.sif", "Singularity.simg"}},
		{"folder with slashes", "/out/images/", "v1", []string{"out/images/Singularity.v1.sif", "out/images/Singularity.v1.simg", "out/images/v1.sif", "out/images/v1.simg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ArtifactCandidates(tt.folder, tt.tag)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ArtifactCandidates(%q, %q) = %q, want %q", tt.folder, tt.tag, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"ubuntu", "a/b/c:t@v", "localhost:5000/foo", "../x", "a:b:c", "122059246,g/p,build"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v which does not validate: %v", s, n, err)
		}
		for _, seg := range strings.Split(n.FullCollection()+"/"+n.Image, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("Parse(%q) = %+v has path segment %q", s, n, seg)
			}
		}
	})
}

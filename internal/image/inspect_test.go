package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestInspectBusybox(t *testing.T) {
	p := needBusybox(t)
	info, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != FormatSIF || info.Compression != "gzip" || info.Size != 792293 {
		t.Errorf("format/compression/size = %s/%s/%d", info.Format, info.Compression, info.Size)
	}
	if info.SIF == nil {
		t.Fatal("no SIF info")
	}
	if info.SIF.Arch != "amd64" || info.SIF.ID != "4f307b4c-58a8-4753-9c0f-21dceefed4a6" {
		t.Errorf("arch/id = %s/%s", info.SIF.Arch, info.SIF.ID)
	}
	const fp = "1137E72E6816BFC06D9CAA0D15F3F4F4F14B03B2"
	if !reflect.DeepEqual(info.SIF.Signers, []string{fp}) {
		t.Errorf("signers = %v", info.SIF.Signers)
	}
	want := []Descriptor{
		{ID: 1, GroupID: 1, Type: "Def.FILE", Name: ".", Offset: 32768, Size: 39},
		{ID: 2, GroupID: 1, Type: "JSON.Generic", Name: "inspect-metadata.json", Offset: 36864, Size: 1896},
		{ID: 3, GroupID: 1, Type: "JSON.Generic", Name: "oci-config.json", Offset: 40960, Size: 90},
		{ID: 4, GroupID: 1, Type: "FS", Name: "squashfs-275937245", Offset: 45056, Size: 745472, FSType: "Squashfs", PartType: "*System", Arch: "amd64"},
		{ID: 5, LinkedID: 1, LinkIsGroup: true, Type: "Signature", Name: ".", Offset: 790528, Size: 1765, HashType: "SHA-256", Fingerprint: fp},
	}
	if !reflect.DeepEqual(info.SIF.Descriptors, want) {
		t.Errorf("descriptors:\n got %+v\nwant %+v", info.SIF.Descriptors, want)
	}
	a := info.Attributes
	if a == nil {
		t.Fatal("no attributes")
	}
	if got := a.Labels["org.label-schema.usage.singularity.version"]; got != "3.8.1" {
		t.Errorf("singularity version label = %q", got)
	}
	if a.Deffile != "BootStrap: docker\nFrom: busybox:1.33.1" {
		t.Errorf("deffile = %q", a.Deffile)
	}
	if !strings.HasPrefix(a.Runscript, "#!/bin/sh\nOCI_ENTRYPOINT=''") || !strings.HasSuffix(a.Runscript, `exec "$@"`) {
		t.Errorf("runscript = %q", a.Runscript)
	}
	if a.Startscript != "#!/bin/sh" {
		t.Errorf("startscript = %q", a.Startscript)
	}
	if len(a.Environment) != 2 || !strings.Contains(a.Environment["/.singularity.d/env/10-docker2singularity.sh"], "export PATH=") {
		t.Errorf("environment = %q", a.Environment)
	}
	if len(info.Warnings) != 0 {
		t.Errorf("warnings: %q", info.Warnings)
	}
}

// The squashfs reader must give what Singularity itself recorded in
// inspect-metadata.json for the same image.
func TestBusyboxSquashfsMatchesMetadata(t *testing.T) {
	p := needBusybox(t)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	part := info.SIF.Descriptors[3]
	attrs, warns, err := readSquashAttributes(io.NewSectionReader(f, part.Offset, part.Size), part.Size)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %q", warns)
	}
	want := *info.Attributes
	if attrs.Deffile != want.Deffile {
		t.Errorf("deffile from /.singularity.d/Singularity = %q, want %q", attrs.Deffile, want.Deffile)
	}
	if !reflect.DeepEqual(attrs, &want) {
		a, _ := json.MarshalIndent(attrs, "", " ")
		b, _ := json.MarshalIndent(&want, "", " ")
		t.Errorf("squashfs attributes differ from inspect-metadata.json:\n%s\n---\n%s", a, b)
	}
}

// wantGenerated are the attributes of makeRootfs.
func wantGenerated() *Attributes {
	return &Attributes{
		Labels: map[string]string{
			"org.label-schema.usage.singularity.version": "3.8.1",
			"MAINTAINER": "Jane <jane@example.org>",
			"number":     "42",
		},
		Runscript:   strings.TrimRight(tRunscript, "\n"),
		Startscript: strings.TrimRight(tStartscript, "\n"),
		Test:        strings.TrimRight(tTest, "\n"),
		Helpfile:    strings.TrimRight(tHelp, "\n"),
		Deffile:     strings.TrimRight(tDeffile, "\n"),
		Environment: map[string]string{
			"/.singularity.d/env/10-docker2singularity.sh": strings.TrimRight(tEnvDocker, "\n"),
			"/.singularity.d/env/90-environment.sh":        strings.TrimRight(tEnv90, "\n"),
		},
		Apps: map[string]*AppAttributes{"foo": {
			Runscript:   strings.TrimRight(tAppRun, "\n"),
			Labels:      map[string]string{"APP": "foo"},
			Environment: map[string]string{"/scif/apps/foo/scif/env/90-environment.sh": "export APPVAR=1"},
		}},
	}
}

func TestInspectGeneratedImages(t *testing.T) {
	needMksquashfs(t)
	root := makeRootfs(t, rootOpts{big: true})
	dir := t.TempDir()
	for _, tc := range []struct {
		comp  string
		extra []string
	}{
		{comp: "gzip"},
		{comp: "gzip", extra: []string{"-noI", "-noD", "-noF", "-noX"}},
		{comp: "xz"},
		{comp: "xz", extra: []string{"-Xbcj", "x86"}},
		{comp: "zstd"},
		{comp: "zstd", extra: []string{"-b", "1M"}},
		{comp: "lzma"},
		{comp: "gzip", extra: []string{"-b", "4K"}},
	} {
		name := tc.comp + strings.Join(tc.extra, "")
		t.Run(name, func(t *testing.T) {
			sq := mksquashfs(t, root, tc.comp, tc.extra...)
			simg := filepath.Join(dir, name+".simg")
			writeSimg(t, simg, sq)
			sifNoMeta := filepath.Join(dir, name+".sif")
			writeSIF(t, sifNoMeta, sq, nil)
			for _, c := range []struct {
				path   string
				format Format
			}{{sq, FormatSquashfs}, {simg, FormatSimg}, {sifNoMeta, FormatSIF}} {
				info, err := Inspect(c.path)
				if err != nil {
					t.Fatalf("%s: %v", c.format, err)
				}
				if info.Format != c.format || info.Compression != tc.comp {
					t.Errorf("%s: format %s compression %s", c.path, info.Format, info.Compression)
				}
				if !reflect.DeepEqual(info.Attributes, wantGenerated()) {
					a, _ := json.MarshalIndent(info.Attributes, "", " ")
					t.Errorf("%s: attributes:\n%s", c.format, a)
				}
				if len(info.Warnings) != 0 {
					t.Errorf("%s: warnings %q", c.format, info.Warnings)
				}
			}
			// File data: multi-block, sparse and fragment reads are exact.
			f, err := os.Open(sq)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			s, err := openSquashfs(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"opt/random.bin", "opt/zeros.bin", "opt/text.txt"} {
				want, _ := os.ReadFile(filepath.Join(root, p))
				got, err := s.readFile("/" + p)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, err %v; want %d bytes", p, len(got), err, len(want))
				}
			}
		})
	}
}

func TestInspectUnsupportedCompression(t *testing.T) {
	root := makeRootfs(t, rootOpts{})
	for _, comp := range []string{"lz4", "lzo"} {
		t.Run(comp, func(t *testing.T) {
			sq := mksquashfs(t, root, comp)
			sifPath := filepath.Join(t.TempDir(), "x.sif")
			writeSIF(t, sifPath, sq, nil)
			for _, p := range []string{sq, sifPath} {
				info, err := Inspect(p)
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "squashfs compression "+comp+" is not supported by the pure-Go reader") {
					t.Fatalf("err = %v", err)
				}
				if info == nil || info.Compression != comp {
					t.Errorf("partial info = %+v", info)
				}
			}
			// With inspect-metadata.json the squashfs is not needed at all.
			meta, _ := MarshalInspectJSON(wantGenerated())
			withMeta := filepath.Join(t.TempDir(), "meta.sif")
			writeSIF(t, withMeta, sq, meta)
			info, err := Inspect(withMeta)
			if err != nil || info.Compression != comp || info.Attributes.Runscript == "" {
				t.Errorf("with metadata: %v %+v", err, info)
			}
		})
	}
}

func TestInspectSIFWithMetadata(t *testing.T) {
	root := makeRootfs(t, rootOpts{})
	sq := mksquashfs(t, root, "gzip")
	marked := wantGenerated()
	marked.Labels = map[string]string{"source": "inspect-metadata.json"}
	marked.Deffile = ""
	meta, err := MarshalInspectJSON(marked)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "meta.sif")
	writeSIF(t, p, sq, meta)
	info, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Attributes.Labels["source"] != "inspect-metadata.json" {
		t.Errorf("labels = %v; inspect-metadata.json must win over the squashfs", info.Attributes.Labels)
	}
	if info.Attributes.Deffile != strings.TrimRight(tDeffile, "\n") {
		t.Errorf("deffile = %q; want it from the Def.FILE descriptor", info.Attributes.Deffile)
	}
	if len(info.SIF.Descriptors) != 3 || info.SIF.Descriptors[1].Name != MetadataDescriptorName {
		t.Errorf("descriptors = %+v", info.SIF.Descriptors)
	}

	// A broken inspect-metadata.json falls back to the root file system.
	bad := filepath.Join(t.TempDir(), "bad.sif")
	writeSIF(t, bad, sq, []byte("{not json"))
	info, err = Inspect(bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "inspect-metadata.json is unreadable") {
		t.Errorf("warnings = %q", info.Warnings)
	}
	if info.Attributes.Labels["number"] != "42" {
		t.Errorf("fallback labels = %v", info.Attributes.Labels)
	}
}

func TestSymlinks(t *testing.T) {
	root := makeRootfs(t, rootOpts{})
	sq := mksquashfs(t, root, "gzip")
	f, err := os.Open(sq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	s, err := openSquashfs(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, want, err string
	}{
		{path: "/singularity", want: tRunscript},                      // absolute target
		{path: "/.singularity.d/startscript", want: tStartscript},     // absolute target
		{path: "/.singularity.d/test", want: tTest},                   // ../ above the root clamps
		{path: "/dirlink/runscript", want: tRunscript},                // link in the middle
		{path: "/dirlink/../opt/start.sh", want: tStartscript},        // .. after a followed link is physical
		{path: "/../../.singularity.d/runscript.help", want: tHelp},   // .. at root stays at root
		{path: "/loop1", err: "too many levels of symbolic links"},    // loop
		{path: "/missing", err: "file does not exist"},                // absent
		{path: "/.singularity.d/runscript/x", err: "not a directory"}, // file as dir
		{path: "/opt", err: "not a regular file"},                     // dir as file
	} {
		got, err := s.readFile(tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

func TestInspectExt3(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext3")
	if err != nil {
		skipOrFail(t, "mkfs.ext3 (e2fsprogs) is not installed")
	}
	root := makeRootfs(t, rootOpts{})
	dir := t.TempDir()
	img := filepath.Join(dir, "bare.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 4<<20); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(mkfs, "-q", "-F", "-d", root, img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext3 -d failed (old e2fsprogs?): %v\n%s", err, b)
	}
	headered := filepath.Join(dir, "headered.img")
	writeSimg(t, headered, img)
	for _, p := range []string{img, headered} {
		info, err := Inspect(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if info.Format != FormatExt3 || info.Attributes != nil || len(info.Warnings) != 1 || info.Warnings[0] != ext3Warning {
			t.Errorf("%s: %+v", p, info)
		}
	}
}

func TestInspectTruncated(t *testing.T) {
	src := needBusybox(t)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range []int{400000, 790000, 30000, 100, 40} {
		p := filepath.Join(dir, "cut.sif")
		if err := os.WriteFile(p, b[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := Inspect(p)
		if n == 40 { // not even the SIF magic survived
			if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), "truncated") {
				t.Errorf("%d bytes: %v", n, err)
			}
			continue
		}
		if !errors.Is(err, ErrTruncated) || info != nil {
			t.Fatalf("%d bytes: info %v err %v", n, info, err)
		}
		if !strings.Contains(err.Error(), "truncated: expected at least") || !strings.Contains(err.Error(), "interrupted download") {
			t.Errorf("%d bytes: message %q", n, err)
		}
	}
}

func TestInspectNotImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, zipBytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Inspect(p)
	if !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), "zip archive") {
		t.Errorf("err = %v", err)
	}
	_, err = Inspect(t.TempDir())
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
	_, err = Inspect(filepath.Join(t.TempDir(), "absent.sif"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent: %v", err)
	}
}

func TestInspectNoSingularityDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "plain")
	writeFile(t, filepath.Join(root, "etc/hostname"), []byte("x\n"))
	sq := mksquashfs(t, root, "gzip")
	info, err := Inspect(sq)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "no /.singularity.d") {
		t.Errorf("warnings = %q", info.Warnings)
	}
}

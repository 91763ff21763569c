package image

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func zipBytes(t testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("busybox.sif")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("not really"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extImage returns a fake ext superblock with the given compat/incompat flags.
func extImage(prefix string, compat, incompat uint32) []byte {
	b := make([]byte, len(prefix)+2048)
	copy(b, prefix)
	sb := b[len(prefix)+1024:]
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[extCompatOff:], compat)
	binary.LittleEndian.PutUint32(sb[extIncompatOff:], incompat)
	return b
}

func TestDetect(t *testing.T) {
	sifHdr := make([]byte, 128)
	copy(sifHdr, LaunchLine)
	copy(sifHdr[32:], sifMagic)
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	random[0] = 0x01 // no accidental magic

	for _, tc := range []struct {
		name   string
		data   []byte
		format Format
		offset int64
		desc   string // for non-images: part of the error
	}{
		{name: "sif", data: sifHdr, format: FormatSIF},
		{name: "bare squashfs", data: []byte("hsqs" + strings.Repeat("\x00", 92)), format: FormatSquashfs},
		{name: "2.x simg", data: []byte(LaunchLine + "hsqs" + strings.Repeat("\x00", 92)), format: FormatSimg, offset: 31},
		{name: "simg other shebang", data: []byte("#!/usr/local/bin/run-singularity\nhsqs"), format: FormatSimg, offset: 33},
		{name: "ext3", data: extImage("", extHasJournal, 0x2), format: FormatExt3},
		{name: "ext3 with launch line", data: extImage(LaunchLine, extHasJournal, 0x2), format: FormatExt3, offset: 31},
		{name: "ext2 no journal", data: extImage("", 0, 0), desc: "unrecognised binary data"},
		{name: "ext4 behind launch line", data: extImage(LaunchLine, extHasJournal, extIncompatExtents), desc: "ext2/ext4"},
		{name: "launch line only", data: []byte(LaunchLine), desc: "truncated download"},
		{name: "cut SIF header", data: sifHdr[:36], desc: "SIF header cut short"},
		{name: "launch line then junk", data: []byte(LaunchLine + "garbage garbage garbage garbage garbage"), desc: "damaged image"},
		{name: "zip", data: zipBytes(t), desc: "zip archive (a GitLab artifacts.zip?"},
		{name: "html", data: []byte("<!DOCTYPE html>\n<html lang=\"en\"><head><title>Sign in · GitLab</title>"), desc: "HTML page (a GitLab sign-in"},
		{name: "html lower", data: []byte("\n  <html><body>502</body></html>"), desc: "HTML page"},
		{name: "gzip", data: []byte{0x1f, 0x8b, 8, 0, 0, 0}, desc: "gzip"},
		{name: "tar", data: append(make([]byte, 257), []byte("ustar\x0000")...), desc: "tar archive"},
		{name: "json error", data: []byte(`{"message":"401 Unauthorized"}`), desc: `JSON document (an API error body? message: "401 Unauthorized")`},
		{name: "json list", data: []byte(`[{"id":1}]`), desc: "JSON document"},
		{name: "empty", data: nil, desc: "empty"},
		{name: "random", data: random, desc: "unrecognised binary data"},
		{name: "text", data: []byte("hello world\n"), desc: `text file ("hello world")`},
		{name: "script", data: []byte("#!/bin/sh\necho hi\n"), desc: "script"},
		{name: "xml", data: []byte(`<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>`), desc: "XML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, off, err := Detect(bytes.NewReader(tc.data), int64(len(tc.data)))
			if tc.desc != "" {
				if f != FormatUnknown || !errors.Is(err, ErrNotImage) || !strings.Contains(err.Error(), tc.desc) {
					t.Fatalf("got %s, %v; want ErrNotImage mentioning %q", f, err, tc.desc)
				}
				return
			}
			if err != nil || f != tc.format || off != tc.offset {
				t.Fatalf("got %s at %d, %v; want %s at %d", f, off, err, tc.format, tc.offset)
			}
		})
	}
}

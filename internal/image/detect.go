package image

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// LaunchLine is the first line Singularity writes in front of 2.x images and
// in the first 32 bytes of a SIF header.
const LaunchLine = "#!/usr/bin/env run-singularity\n"

const (
	sifMagic      = "SIF_MAGIC\x00"
	sifMagicOff   = 32
	squashMagic   = "hsqs"
	extMagicOff   = 1080 // superblock (1024) + s_magic (0x38)
	sniffLen      = 4096 // enough for the ext superblock behind a launch line
	maxLaunchLine = 256  // a launch line longer than this is not one
)

// ext superblock feature bits (offsets relative to the superblock at 1024).
const (
	extCompatOff        = 0x5C
	extIncompatOff      = 0x60
	extHasJournal       = 0x4
	extIncompatExtents  = 0x40
	extIncompat64Bit    = 0x80
	extIncompatFlexBg   = 0x200
	extIncompatExt4Only = extIncompatExtents | extIncompat64Bit | extIncompatFlexBg
)

// Detect sniffs the format from the first bytes of r. offset is where the
// squashfs/ext3 payload starts (31 for a 2.x .simg). For non-images it returns
// FormatUnknown and an error wrapping ErrNotImage that names what it looks like.
func Detect(r io.ReaderAt, size int64) (f Format, offset int64, err error) {
	if size <= 0 {
		return FormatUnknown, 0, fmt.Errorf("%w: the file is empty (0 bytes; an interrupted download?)", ErrNotImage)
	}
	n := int64(sniffLen)
	if size < n {
		n = size
	}
	buf := make([]byte, n)
	got, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return FormatUnknown, 0, fmt.Errorf("read image header: %w", err)
	}
	buf = buf[:got]
	if got == 0 {
		return FormatUnknown, 0, fmt.Errorf("%w: the file is empty (0 bytes; an interrupted download?)", ErrNotImage)
	}
	f, offset, desc := sniff(buf)
	if f != FormatUnknown {
		return f, offset, nil
	}
	return FormatUnknown, 0, fmt.Errorf("%w: %s", ErrNotImage, desc)
}

// sniff classifies the first bytes of a file. For non-images desc says what
// the content looks like.
func sniff(b []byte) (f Format, offset int64, desc string) {
	if len(b) >= sifMagicOff+len(sifMagic) && string(b[sifMagicOff:sifMagicOff+len(sifMagic)]) == sifMagic {
		return FormatSIF, 0, ""
	}
	if bytes.HasPrefix(b, []byte(squashMagic)) {
		return FormatSquashfs, 0, ""
	}
	if isExt3(b, 0) {
		return FormatExt3, 0, ""
	}
	if hdr := launchLineLen(b); hdr > 0 {
		rest := b[hdr:]
		switch {
		case bytes.HasPrefix(rest, []byte(squashMagic)):
			return FormatSimg, int64(hdr), ""
		case isExt3(b, hdr):
			return FormatExt3, int64(hdr), ""
		case len(b) < hdr+len(squashMagic):
			return FormatUnknown, 0, "only a Singularity launch line with no image behind it (a truncated download?)"
		case len(b) >= sifMagicOff && len(b) < sifMagicOff+len(sifMagic) &&
			strings.HasPrefix(sifMagic, string(b[sifMagicOff:])):
			return FormatUnknown, 0, "the start of a SIF header cut short (a truncated download?)"
		case hasExtMagic(b, hdr):
			return FormatUnknown, 0, "a Singularity launch line followed by an ext2/ext4 file system, not an ext3 image"
		}
		return FormatUnknown, 0, "a Singularity launch line followed by unknown data (a damaged image?)"
	}
	return FormatUnknown, 0, describe(b)
}

// launchLineLen returns the length of a "#!...run-singularity\n" first line,
// or 0 when there is none. Apptainer accepts any shebang naming run-singularity.
func launchLineLen(b []byte) int {
	if !bytes.HasPrefix(b, []byte("#!")) {
		return 0
	}
	lim := b
	if len(lim) > maxLaunchLine {
		lim = lim[:maxLaunchLine]
	}
	nl := bytes.IndexByte(lim, '\n')
	if nl < 0 || !bytes.Contains(lim[:nl], []byte("run-singularity")) {
		return 0
	}
	return nl + 1
}

func hasExtMagic(b []byte, off int) bool {
	p := off + extMagicOff
	return p >= 0 && len(b) >= p+2 && binary.LittleEndian.Uint16(b[p:]) == 0xEF53
}

// isExt3 reports an ext file system with a journal and no ext4-only
// features at off, like Apptainer's pkg/image/ext3.go.
func isExt3(b []byte, off int) bool {
	if !hasExtMagic(b, off) {
		return false
	}
	sb := off + 1024
	if len(b) < sb+extIncompatOff+4 {
		return false
	}
	compat := binary.LittleEndian.Uint32(b[sb+extCompatOff:])
	incompat := binary.LittleEndian.Uint32(b[sb+extIncompatOff:])
	return compat&extHasJournal != 0 && incompat&extIncompatExt4Only == 0
}

// describe says in a few words what a non-image file looks like, so that a
// saved sign-in page or an artifacts.zip is obvious from the error.
func describe(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), bytes.HasPrefix(b, []byte("PK\x05\x06")):
		return "this is a zip archive (a GitLab artifacts.zip? extract the image from it first)"
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return "this is gzip-compressed data (a .tar.gz or a compressed image? decompress it first)"
	case bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")):
		return "this is xz-compressed data (decompress it first)"
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "this is zstd-compressed data (decompress it first)"
	case bytes.HasPrefix(b, []byte("BZh")):
		return "this is bzip2-compressed data (decompress it first)"
	case len(b) >= 262 && string(b[257:262]) == "ustar":
		return "this is a tar archive (a Docker/OCI export? build a SIF from it first)"
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return "this is an ELF executable, not an image"
	case bytes.HasPrefix(b, []byte("%PDF")):
		return "this is a PDF document"
	}
	text := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	lower := bytes.ToLower(text[:min(len(text), 512)])
	switch {
	case bytes.HasPrefix(lower, []byte("<!doctype html")), bytes.HasPrefix(lower, []byte("<html")),
		bytes.HasPrefix(lower, []byte("<!--")) && bytes.Contains(lower, []byte("<html")):
		return "this is an HTML page (a GitLab sign-in or error page saved instead of the image? check the URL and your token)"
	case bytes.HasPrefix(lower, []byte("<?xml")):
		return "this is an XML document (an S3/object-storage error response?)"
	case len(text) > 0 && (text[0] == '{' || text[0] == '['):
		return describeJSON(text)
	case bytes.HasPrefix(text, []byte("#!")):
		return "this is a script (" + quoteLine(text) + "), not an image"
	case len(text) == 0:
		return "the file contains only white space"
	case utf8.Valid(text) && isPrintable(text):
		return "this is a text file (" + quoteLine(text) + ")"
	}
	return fmt.Sprintf("unrecognised binary data (first bytes % x)", b[:min(len(b), 8)])
}

// describeJSON names a JSON body and quotes an API error message if it has one.
func describeJSON(text []byte) string {
	var obj map[string]any
	if json.Unmarshal(text, &obj) == nil {
		for _, k := range []string{"message", "error", "error_description", "errors"} {
			if v, ok := obj[k]; ok {
				msg, _ := json.Marshal(v)
				return fmt.Sprintf("this is a JSON document (an API error body? %s: %s)", k, clip(string(msg), 120))
			}
		}
		return "this is a JSON document (an API response saved instead of the image?)"
	}
	if json.Valid(text) {
		return "this is a JSON document (an API response saved instead of the image?)"
	}
	return "this looks like a JSON document (an API response saved instead of the image?)"
}

func isPrintable(b []byte) bool {
	for _, r := range string(b) {
		if r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\r' && r != '\t') {
			return false
		}
	}
	return true
}

func quoteLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return fmt.Sprintf("%q", clip(string(line), 60))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

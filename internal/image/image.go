// Package image detects Singularity/Apptainer image formats by content and
// reads their metadata natively: SIF descriptors, inspect-metadata.json, the
// squashfs /.singularity.d files, and legacy 2.x .simg images.
//
// The API is split over files: Detect in detect.go, Inspect in inspect.go,
// Metrics, sections and the `apptainer inspect --json` rendering in
// metadata.go. Signature verification lives in the verify subpackage so
// that plain inspection stays small.
package image

import (
	"errors"
	"time"
)

// Format is a detected file format.
type Format string

// Formats.
const (
	FormatSIF      Format = "sif"
	FormatSimg     Format = "simg"     // Singularity 2.x: "#!/usr/bin/env run-singularity\n" + squashfs
	FormatSquashfs Format = "squashfs" // bare squashfs
	FormatExt3     Format = "ext3"     // legacy 2.x ext3 (with or without launch line); content unsupported
	FormatUnknown  Format = "unknown"
)

// ErrTruncated is wrapped when the file is shorter than its own headers say.
var ErrTruncated = errors.New("image is truncated")

// ErrNotImage is wrapped when the content is not an image; the message says
// what it looks like (zip archive, HTML page, gzip, ...).
var ErrNotImage = errors.New("not a Singularity/Apptainer image")

// ErrUnsupported is wrapped for images we recognise but cannot read (lz4/lzo squashfs, ext3, encrypted).
var ErrUnsupported = errors.New("unsupported image content")

// AppAttributes are one SCIF app's sections.
type AppAttributes struct {
	Environment map[string]string `json:"environment,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Runscript   string            `json:"runscript,omitempty"`
	Startscript string            `json:"startscript,omitempty"`
	Test        string            `json:"test,omitempty"`
	Helpfile    string            `json:"helpfile,omitempty"`
}

// Attributes is what `apptainer inspect --json` shows (3.6+ shape).
type Attributes struct {
	Apps        map[string]*AppAttributes `json:"apps,omitempty"`
	Environment map[string]string         `json:"environment,omitempty"`
	Labels      map[string]string         `json:"labels,omitempty"`
	Runscript   string                    `json:"runscript,omitempty"`
	Test        string                    `json:"test,omitempty"`
	Helpfile    string                    `json:"helpfile,omitempty"`
	Deffile     string                    `json:"deffile,omitempty"`
	Startscript string                    `json:"startscript,omitempty"`
}

// Descriptor is one SIF data object.
type Descriptor struct {
	ID          uint32 `json:"id"`
	GroupID     uint32 `json:"group_id"`
	LinkedID    uint32 `json:"linked_id"`
	LinkIsGroup bool   `json:"link_is_group,omitempty"`
	Type        string `json:"type"` // "Def.FILE", "JSON.Generic", "FS", "Signature", ...
	Name        string `json:"name"`
	Offset      int64  `json:"offset"`
	Size        int64  `json:"size"`
	FSType      string `json:"fs_type,omitempty"`   // partitions: "Squashfs", "Ext3", ...
	PartType    string `json:"part_type,omitempty"` // partitions: "*System", "Data", ...
	Arch        string `json:"arch,omitempty"`
	HashType    string `json:"hash_type,omitempty"`   // signatures
	Fingerprint string `json:"fingerprint,omitempty"` // signatures: upper-case hex, "" for DSSE
}

// SIFInfo is SIF-level information.
type SIFInfo struct {
	ID          string       `json:"id"`
	Arch        string       `json:"arch"`
	Created     time.Time    `json:"created"`
	Modified    time.Time    `json:"modified"`
	Descriptors []Descriptor `json:"descriptors"`
	Signers     []string     `json:"signers,omitempty"` // fingerprints of signatures present (not verified)
}

// Info is everything Inspect learned about an image file.
type Info struct {
	Path        string      `json:"path"`
	Size        int64       `json:"size"`
	Format      Format      `json:"format"`
	Compression string      `json:"compression,omitempty"` // squashfs compressor: gzip, xz, zstd, lzma, lz4, lzo
	SIF         *SIFInfo    `json:"sif,omitempty"`
	Attributes  *Attributes `json:"attributes,omitempty"` // nil when the content cannot be read (ext3, encrypted)
	Warnings    []string    `json:"warnings,omitempty"`
}

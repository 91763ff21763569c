package image

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/therootcompany/xz"
	"github.com/ulikunitz/xz/lzma"
)

// This is a small read-only squashfs 4.0 reader made for metadata: it looks up
// a few paths and reads a few small files. Every size it takes from the image
// is bounded before it allocates, so a corrupt or hostile image gives an error,
// never a panic, a hang or a huge allocation. (github.com/sylabs/squashfs sizes
// its buffers from unchecked on-disk fields and loops on corrupt directories; see
// TestSquashfsMatchesSylabs for the cross-check against it.)

// Limits on what one inspection reads from a squashfs.
const (
	// MaxFileRead caps any single file read from an image.
	MaxFileRead = 16 << 20
	// MaxDirEntries caps the entries read from one directory.
	MaxDirEntries = 10000
	// maxSymlinkHops is the Linux limit (MAXSYMLINKS) on links followed per lookup.
	maxSymlinkHops = 40
	// maxMetaBlocks caps the metadata blocks decoded per image (64 MiB of metadata).
	maxMetaBlocks = 8192
	// maxTargetLen is PATH_MAX.
	maxTargetLen  = 4096
	metaBlockSize = 8192
	invalidFrag   = 0xffffffff
)

// Squashfs compression ids (superblock offset 20).
var compressionNames = map[uint16]string{1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}

// errSquashfs is wrapped by every error about a damaged squashfs.
var errSquashfs = errors.New("squashfs is corrupt")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSquashfs, fmt.Sprintf(format, args...))
}

// superblock is the 96-byte squashfs 4.0 superblock.
type superblock struct {
	Magic             uint32
	InodeCount        uint32
	ModTime           uint32
	BlockSize         uint32
	FragCount         uint32
	Compression       uint16
	BlockLog          uint16
	Flags             uint16
	IDCount           uint16
	VersionMajor      uint16
	VersionMinor      uint16
	RootInode         uint64
	BytesUsed         uint64
	IDTableStart      uint64
	XattrIDTableStart uint64
	InodeTableStart   uint64
	DirTableStart     uint64
	FragTableStart    uint64
	ExportTableStart  uint64
}

// squashCompression returns the compressor name of the squashfs at r, or "" if
// the superblock cannot be read.
func squashCompression(r io.ReaderAt) string {
	var b [2]byte
	if _, err := r.ReadAt(b[:], 20); err != nil {
		return ""
	}
	id := binary.LittleEndian.Uint16(b[:])
	if n, ok := compressionNames[id]; ok {
		return n
	}
	return fmt.Sprintf("unknown (%d)", id)
}

type decompressFunc func(src []byte, limit int) ([]byte, error)

// squashFS is an open squashfs image.
type squashFS struct {
	r          io.ReaderAt
	size       int64
	sb         superblock
	decompress decompressFunc
	meta       map[int64]metaBlock // decoded metadata blocks by position
	metaReads  int
	dirs       map[uint64][]dirEntry
}

type metaBlock struct {
	data []byte
	next int64
}

type dirEntry struct {
	name string
	ref  uint64
	typ  uint16
}

// inode types.
const (
	typDir     = 1
	typFile    = 2
	typSymlink = 3
	typLDir    = 8
	typLFile   = 9
	typLSym    = 10
)

type inode struct {
	typ uint16
	// directories
	dirStart  uint32
	dirOffset uint16
	dirSize   uint32
	// files
	blocksStart uint64
	fileSize    uint64
	fragIndex   uint32
	fragOffset  uint32
	blockSizes  []uint32
	// symlinks
	target string
}

func (in *inode) isDir() bool     { return in.typ == typDir || in.typ == typLDir }
func (in *inode) isRegular() bool { return in.typ == typFile || in.typ == typLFile }
func (in *inode) isSymlink() bool { return in.typ == typSymlink || in.typ == typLSym }

// openSquashfs checks the superblock of the squashfs at r (size bytes long).
// lz4 and lzo give an error wrapping ErrUnsupported.
func openSquashfs(r io.ReaderAt, size int64) (*squashFS, error) {
	s := &squashFS{r: r, size: size, meta: map[int64]metaBlock{}, dirs: map[uint64][]dirEntry{}}
	var b [96]byte
	if size < int64(len(b)) {
		return nil, fmt.Errorf("%w: squashfs superblock needs 96 bytes, have %d (an interrupted download?)", ErrTruncated, size)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("read squashfs superblock: %w", err)
	}
	if err := binary.Read(bytes.NewReader(b[:]), binary.LittleEndian, &s.sb); err != nil {
		return nil, fmt.Errorf("decode squashfs superblock: %w", err)
	}
	sb := &s.sb
	if sb.Magic != 0x73717368 {
		return nil, corrupt("bad superblock magic")
	}
	if sb.VersionMajor != 4 {
		return nil, fmt.Errorf("%w: squashfs version %d.%d (only 4.0 is read; Singularity never wrote older ones)", ErrUnsupported, sb.VersionMajor, sb.VersionMinor)
	}
	if sb.BlockLog < 12 || sb.BlockLog > 20 || sb.BlockSize != 1<<sb.BlockLog {
		return nil, corrupt("bad block size %d", sb.BlockSize)
	}
	if sb.BytesUsed > uint64(size) {
		return nil, fmt.Errorf("%w: truncated: expected at least %d bytes of squashfs, have %d (an interrupted download?)", ErrTruncated, sb.BytesUsed, size)
	}
	for _, t := range []uint64{sb.InodeTableStart, sb.DirTableStart} {
		if t >= uint64(size) {
			return nil, corrupt("table offset %d beyond the end (%d bytes)", t, size)
		}
	}
	switch sb.Compression {
	case 1:
		s.decompress = inflateZlib
	case 2:
		s.decompress = inflateLZMA
	case 4:
		s.decompress = inflateXZ
	case 6:
		s.decompress = inflateZstd
	case 3, 5:
		return nil, fmt.Errorf("%w: squashfs compression %s is not supported by the pure-Go reader (rebuild the image with gzip, xz or zstd, or use `apptainer inspect`)",
			ErrUnsupported, compressionNames[sb.Compression])
	default:
		return nil, corrupt("unknown compression id %d", sb.Compression)
	}
	return s, nil
}

// readAt reads exactly n bytes at off, refusing anything outside the image.
func (s *squashFS) readAt(off uint64, n int) ([]byte, error) {
	if n < 0 || off > uint64(s.size) || uint64(n) > uint64(s.size)-off {
		return nil, corrupt("read of %d bytes at %d is beyond the end (%d bytes)", n, off, s.size)
	}
	b := make([]byte, n)
	if _, err := s.r.ReadAt(b, int64(off)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, corrupt("unexpected end of data at %d", off)
		}
		return nil, err
	}
	return b, nil
}

// metaBlockAt decodes the metadata block at pos.
func (s *squashFS) metaBlockAt(pos int64) (metaBlock, error) {
	if mb, ok := s.meta[pos]; ok {
		return mb, nil
	}
	s.metaReads++
	if s.metaReads > maxMetaBlocks {
		return metaBlock{}, corrupt("more than %d metadata blocks read", maxMetaBlocks)
	}
	hdr, err := s.readAt(uint64(pos), 2)
	if err != nil {
		return metaBlock{}, err
	}
	h := binary.LittleEndian.Uint16(hdr)
	n := int(h & 0x7fff)
	if n == 0 || n > metaBlockSize {
		return metaBlock{}, corrupt("metadata block at %d has size %d", pos, n)
	}
	raw, err := s.readAt(uint64(pos)+2, n)
	if err != nil {
		return metaBlock{}, err
	}
	data := raw
	if h&0x8000 == 0 {
		if data, err = s.decompress(raw, metaBlockSize); err != nil {
			return metaBlock{}, corrupt("metadata block at %d: %v", pos, err)
		}
	}
	if len(s.meta) > 4096 {
		clear(s.meta)
	}
	mb := metaBlock{data: data, next: pos + 2 + int64(n)}
	s.meta[pos] = mb
	return mb, nil
}

// metaCursor reads a byte stream that continues across metadata blocks.
type metaCursor struct {
	s   *squashFS
	blk metaBlock
	pos int
}

func (s *squashFS) cursor(table uint64, block uint64, offset uint16) (*metaCursor, error) {
	start := table + block
	if start < table || start >= uint64(s.size) {
		return nil, corrupt("metadata reference %d+%d beyond the end", table, block)
	}
	mb, err := s.metaBlockAt(int64(start))
	if err != nil {
		return nil, err
	}
	if int(offset) > len(mb.data) {
		return nil, corrupt("metadata offset %d beyond its block (%d bytes)", offset, len(mb.data))
	}
	return &metaCursor{s: s, blk: mb, pos: int(offset)}, nil
}

// read returns the next n bytes; callers bound n.
func (c *metaCursor) read(n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for len(out) < n {
		if c.pos >= len(c.blk.data) {
			mb, err := c.s.metaBlockAt(c.blk.next)
			if err != nil {
				return nil, err
			}
			c.blk, c.pos = mb, 0
		}
		k := copy(out[len(out):n], c.blk.data[c.pos:])
		out = out[:len(out)+k]
		c.pos += k
	}
	return out, nil
}

func (c *metaCursor) u16() (uint16, error) {
	b, err := c.read(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (c *metaCursor) u32() (uint32, error) {
	b, err := c.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// readInode decodes the inode at ref (block<<16 | offset in the inode table).
func (s *squashFS) readInode(ref uint64) (*inode, error) {
	c, err := s.cursor(s.sb.InodeTableStart, ref>>16, uint16(ref))
	if err != nil {
		return nil, err
	}
	hdr, err := c.read(16)
	if err != nil {
		return nil, err
	}
	in := &inode{typ: binary.LittleEndian.Uint16(hdr)}
	le := binary.LittleEndian
	switch in.typ {
	case typDir:
		b, err := c.read(16)
		if err != nil {
			return nil, err
		}
		in.dirStart, in.dirSize, in.dirOffset = le.Uint32(b[0:]), uint32(le.Uint16(b[8:])), le.Uint16(b[10:])
	case typLDir:
		b, err := c.read(24)
		if err != nil {
			return nil, err
		}
		in.dirSize, in.dirStart, in.dirOffset = le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint16(b[18:])
	case typFile:
		b, err := c.read(16)
		if err != nil {
			return nil, err
		}
		in.blocksStart, in.fragIndex, in.fragOffset, in.fileSize = uint64(le.Uint32(b[0:])), le.Uint32(b[4:]), le.Uint32(b[8:]), uint64(le.Uint32(b[12:]))
		err = s.readBlockList(c, in)
		if err != nil {
			return nil, err
		}
	case typLFile:
		b, err := c.read(40)
		if err != nil {
			return nil, err
		}
		in.blocksStart, in.fileSize, in.fragIndex, in.fragOffset = le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint32(b[28:]), le.Uint32(b[32:])
		if err := s.readBlockList(c, in); err != nil {
			return nil, err
		}
	case typSymlink, typLSym:
		b, err := c.read(8)
		if err != nil {
			return nil, err
		}
		n := le.Uint32(b[4:])
		if n == 0 || n > maxTargetLen {
			return nil, corrupt("symlink target length %d", n)
		}
		t, err := c.read(int(n))
		if err != nil {
			return nil, err
		}
		in.target = string(t)
	case 4, 5, 6, 7, 11, 12, 13, 14: // devices, fifos, sockets: nothing to read
	default:
		return nil, corrupt("inode type %d", in.typ)
	}
	return in, nil
}

// readBlockList reads a file's block sizes, only for files small enough to read.
func (s *squashFS) readBlockList(c *metaCursor, in *inode) error {
	if in.fileSize > MaxFileRead {
		return nil // readFile refuses it; the list is not needed
	}
	bs := uint64(s.sb.BlockSize)
	n := in.fileSize / bs
	if in.fragIndex == invalidFrag && in.fileSize%bs != 0 {
		n++
	}
	b, err := c.read(int(n) * 4)
	if err != nil {
		return err
	}
	in.blockSizes = make([]uint32, n)
	for i := range in.blockSizes {
		in.blockSizes[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return nil
}

// readDir lists a directory inode (at most MaxDirEntries entries).
func (s *squashFS) readDir(in *inode) ([]dirEntry, error) {
	key := uint64(in.dirStart)<<16 | uint64(in.dirOffset)
	if ents, ok := s.dirs[key]; ok {
		return ents, nil
	}
	if in.dirSize <= 3 { // an empty directory has size 3
		return nil, nil
	}
	c, err := s.cursor(s.sb.DirTableStart, uint64(in.dirStart), in.dirOffset)
	if err != nil {
		return nil, err
	}
	remaining := int64(in.dirSize) - 3
	var ents []dirEntry
	for remaining > 0 {
		h, err := c.read(12)
		if err != nil {
			return nil, err
		}
		remaining -= 12
		count := int64(binary.LittleEndian.Uint32(h)) + 1
		start := binary.LittleEndian.Uint32(h[4:])
		if count > 256 {
			return nil, corrupt("directory header with %d entries (max 256)", count)
		}
		for ; count > 0 && remaining > 0; count-- {
			e, err := c.read(8)
			if err != nil {
				return nil, err
			}
			nameLen := int(binary.LittleEndian.Uint16(e[6:])) + 1
			if nameLen > 256 {
				return nil, corrupt("directory entry name of %d bytes", nameLen)
			}
			name, err := c.read(nameLen)
			if err != nil {
				return nil, err
			}
			remaining -= 8 + int64(nameLen)
			if len(ents) >= MaxDirEntries {
				return nil, fmt.Errorf("directory has more than %d entries; refusing to read further", MaxDirEntries)
			}
			ents = append(ents, dirEntry{
				name: string(name),
				ref:  uint64(start)<<16 | uint64(binary.LittleEndian.Uint16(e)),
				typ:  binary.LittleEndian.Uint16(e[4:]),
			})
		}
	}
	if len(s.dirs) > 1024 {
		clear(s.dirs)
	}
	s.dirs[key] = ents
	return ents, nil
}

// lookup resolves an absolute in-image path like the kernel would inside a
// chroot: relative and absolute symlinks are followed (including a final one),
// ".." never climbs above the root, and more than 40 links is an error.
func (s *squashFS) lookup(p string) (*inode, error) {
	root, err := s.readInode(s.sb.RootInode)
	if err != nil {
		return nil, err
	}
	if !root.isDir() {
		return nil, corrupt("root inode is not a directory")
	}
	stack := []*inode{root} // physical path, for ".."
	comps := strings.Split(p, "/")
	hops := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		dir := stack[len(stack)-1]
		if !dir.isDir() {
			return nil, &fs.PathError{Op: "open", Path: p, Err: errors.New("not a directory")}
		}
		ents, err := s.readDir(dir)
		if err != nil {
			return nil, err
		}
		var found *dirEntry
		for i := range ents {
			if ents[i].name == name {
				found = &ents[i]
				break
			}
		}
		if found == nil {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		in, err := s.readInode(found.ref)
		if err != nil {
			return nil, err
		}
		if in.isSymlink() {
			hops++
			if hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: "open", Path: p, Err: errors.New("too many levels of symbolic links")}
			}
			if strings.HasPrefix(in.target, "/") {
				stack = stack[:1]
			}
			comps = append(strings.Split(in.target, "/"), comps...)
			continue
		}
		stack = append(stack, in)
	}
	return stack[len(stack)-1], nil
}

// errTooLarge is wrapped when a file exceeds MaxFileRead.
var errTooLarge = errors.New("file too large")

// readFile reads a regular file (following symlinks) of at most MaxFileRead bytes.
func (s *squashFS) readFile(p string) ([]byte, error) {
	in, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if !in.isRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	if in.fileSize > MaxFileRead {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, in.fileSize, MaxFileRead)}
	}
	bs := int(s.sb.BlockSize)
	out := make([]byte, 0, in.fileSize)
	pos := in.blocksStart
	for _, w := range in.blockSizes {
		blk, n, err := s.dataBlock(pos, w)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		pos += n
		out = append(out, blk...)
	}
	if in.fragIndex != invalidFrag {
		frag, err := s.fragment(in.fragIndex)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		tail := int(in.fileSize % uint64(bs))
		end := int(in.fragOffset) + tail
		if int(in.fragOffset) > len(frag) || end > len(frag) {
			return nil, corrupt("read %s: fragment range %d+%d beyond its block (%d bytes)", p, in.fragOffset, tail, len(frag))
		}
		out = append(out, frag[in.fragOffset:end]...)
	}
	if uint64(len(out)) < in.fileSize {
		return nil, corrupt("read %s: %d of %d bytes", p, len(out), in.fileSize)
	}
	return out[:in.fileSize], nil
}

// dataBlock decodes the data block at pos whose size word is w, and returns
// its data and its on-disk length.
func (s *squashFS) dataBlock(pos uint64, w uint32) ([]byte, uint64, error) {
	bs := int(s.sb.BlockSize)
	n := int(w & 0xffffff)
	if n == 0 { // sparse block
		return make([]byte, bs), 0, nil
	}
	if n > bs {
		return nil, 0, corrupt("data block of %d bytes (block size %d)", n, bs)
	}
	raw, err := s.readAt(pos, n)
	if err != nil {
		return nil, 0, err
	}
	if w&(1<<24) != 0 {
		return raw, uint64(n), nil
	}
	data, err := s.decompress(raw, bs)
	if err != nil {
		return nil, 0, corrupt("data block at %d: %v", pos, err)
	}
	return data, uint64(n), nil
}

// fragment decodes fragment block i.
func (s *squashFS) fragment(i uint32) ([]byte, error) {
	if i >= s.sb.FragCount {
		return nil, corrupt("fragment %d of %d", i, s.sb.FragCount)
	}
	loc, err := s.readAt(s.sb.FragTableStart+8*uint64(i/512), 8)
	if err != nil {
		return nil, err
	}
	c, err := s.cursor(binary.LittleEndian.Uint64(loc), 0, uint16(i%512)*16)
	if err != nil {
		return nil, err
	}
	e, err := c.read(16)
	if err != nil {
		return nil, err
	}
	data, _, err := s.dataBlock(binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint32(e[8:]))
	return data, err
}

// readDirNames lists the entry names of the directory at p (following symlinks).
func (s *squashFS) readDirNames(p string) ([]string, error) {
	in, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: errors.New("not a directory")}
	}
	ents, err := s.readDir(in)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.name != "" && e.name != "." && e.name != ".." && !strings.Contains(e.name, "/") {
			names = append(names, e.name)
		}
	}
	return names, nil
}

// limitedDecompress reads at most limit bytes from rd; more is an error
// (a decompression bomb, or a block bigger than the block size).
func limitedDecompress(rd io.Reader, limit int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(rd, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("block decompresses to more than %d bytes", limit)
	}
	return out, nil
}

func inflateZlib(src []byte, limit int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return limitedDecompress(zr, limit)
}

func inflateXZ(src []byte, limit int) ([]byte, error) {
	xr, err := xz.NewReader(bytes.NewReader(src), 1<<21)
	if err != nil {
		return nil, err
	}
	return limitedDecompress(xr, limit)
}

func inflateLZMA(src []byte, limit int) ([]byte, error) {
	// The lzma-alone header names the dictionary size; the reader allocates it,
	// so refuse anything larger than squashfs' 1 MiB maximum block size needs.
	if len(src) < 13 || binary.LittleEndian.Uint32(src[1:5]) > 1<<21 {
		return nil, errors.New("bad lzma header")
	}
	lr, err := lzma.ReaderConfig{DictCap: 1 << 21}.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return limitedDecompress(lr, limit)
}

func inflateZstd(src []byte, limit int) ([]byte, error) {
	zr, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return limitedDecompress(zr, limit)
}

// cleanImagePath turns an in-image path into the absolute form used as keys.
func cleanImagePath(p string) string { return path.Clean("/" + p) }

package image

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apptainer/sif/v2/pkg/sif"
)

// inspectTimeout bounds one inspection; reads after it fail, so a damaged
// image can never hang the caller.
const inspectTimeout = 30 * time.Second

// MetadataDescriptorName is the SIF JSON.Generic object that holds what
// `apptainer inspect --all --json` prints (Singularity >= 3.6).
const MetadataDescriptorName = "inspect-metadata.json"

// ext3Warning is the warning for legacy ext3 images.
const ext3Warning = "ext3 images (Singularity <= 2.3) are not readable natively; metadata unavailable"

// Inspect opens path read-only and reads its metadata only (never the whole file).
//
// When the image is recognised but its content cannot be read (errors wrapping
// ErrUnsupported, or a damaged root file system) Inspect returns the partial
// Info (format, size, SIF descriptors, compression) together with the error.
func Inspect(path string) (*Info, error) {
	f, err := os.Open(path) // read-only: cache files may be read-only or another user's
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("inspect %s: %w: it is a directory (a sandbox?); pass an image file", path, ErrUnsupported)
	}
	info, err := inspectReaderAt(f, st.Size())
	if info != nil {
		info.Path = path
	}
	if err != nil {
		return info, fmt.Errorf("inspect %s: %w", path, err)
	}
	return info, nil
}

// inspectReaderAt is Inspect over any ReaderAt of size bytes; tests wrap it to
// count the bytes read.
func inspectReaderAt(r io.ReaderAt, size int64) (info *Info, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error reading the image (it is probably damaged; please report this): %v", p)
		}
	}()
	r = &deadlineReaderAt{r: r, deadline: time.Now().Add(inspectTimeout)}
	format, off, err := Detect(r, size)
	if err != nil {
		return nil, err
	}
	info = &Info{Size: size, Format: format}
	switch format {
	case FormatSIF:
		err = inspectSIF(r, size, info)
	case FormatSimg, FormatSquashfs:
		sec := io.NewSectionReader(r, off, size-off)
		info.Compression = squashCompression(sec)
		var warns []string
		info.Attributes, warns, err = readSquashAttributes(sec, size-off)
		info.Warnings = append(info.Warnings, warns...)
	case FormatExt3:
		info.Warnings = append(info.Warnings, ext3Warning)
	}
	if err != nil {
		if errors.Is(err, ErrTruncated) || errors.Is(err, ErrNotImage) {
			return nil, err
		}
		return info, err
	}
	return info, nil
}

// deadlineReaderAt fails reads after a deadline.
type deadlineReaderAt struct {
	r        io.ReaderAt
	deadline time.Time
}

func (d *deadlineReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if time.Now().After(d.deadline) {
		return 0, fmt.Errorf("reading the image took longer than %s; it is probably damaged", inspectTimeout)
	}
	return d.r.ReadAt(p, off)
}

// readOnlyRW adapts a ReaderAt to sif.ReadWriter; writes always fail.
type readOnlyRW struct{ io.ReaderAt }

var errReadOnly = errors.New("image opened read-only")

func (readOnlyRW) Write([]byte) (int, error)      { return 0, errReadOnly }
func (readOnlyRW) Seek(int64, int) (int64, error) { return 0, errReadOnly }
func (readOnlyRW) Truncate(int64) error           { return errReadOnly }

// sifHeader is the 128-byte SIF global header.
type sifHeader struct {
	Launch                 [32]byte
	Magic                  [10]byte
	Version                [3]byte
	Arch                   [3]byte
	ID                     [16]byte
	Created, Modified      int64
	DescrFree, DescrTotal  int64
	DescrOffset, DescrSize int64
	DataOffset, DataSize   int64
}

const (
	sifHeaderSize     = 128
	sifDescriptorSize = 585
	maxSIFDescriptors = 1 << 16
)

func truncated(need, have int64) error {
	return fmt.Errorf("%w: truncated: expected at least %d bytes, file has %d (an interrupted download? fetch it again)", ErrTruncated, need, have)
}

// end returns off+n, or an error for negative or overflowing values.
func end(what string, off, n int64) (int64, error) {
	if off < 0 || n < 0 || off > (1<<62) || n > (1<<62) {
		return 0, fmt.Errorf("SIF is damaged: %s has offset %d and size %d", what, off, n)
	}
	return off + n, nil
}

// checkSIFHeader validates the fields the sif library trusts, before it
// allocates from them, and checks the descriptors fit in the file.
func checkSIFHeader(r io.ReaderAt, size int64) error {
	if size < sifHeaderSize {
		return truncated(sifHeaderSize, size)
	}
	var b [sifHeaderSize]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return fmt.Errorf("read SIF header: %w", err)
	}
	var h sifHeader
	if _, err := binary.Decode(b[:], binary.LittleEndian, &h); err != nil {
		return fmt.Errorf("decode SIF header: %w", err)
	}
	if string(h.Version[:]) != "01\x00" {
		return fmt.Errorf("%w: SIF version %q (only version 01 exists; a newer tool?)", ErrUnsupported, strings.TrimRight(string(h.Version[:]), "\x00"))
	}
	if h.DescrTotal < 0 || h.DescrTotal > maxSIFDescriptors {
		return fmt.Errorf("SIF is damaged: header says %d descriptors", h.DescrTotal)
	}
	descEnd, err := end("the descriptor table", h.DescrOffset, h.DescrTotal*sifDescriptorSize)
	if err != nil {
		return err
	}
	if h.DescrSize < h.DescrTotal*sifDescriptorSize {
		return fmt.Errorf("SIF is damaged: descriptor table of %d bytes cannot hold %d descriptors", h.DescrSize, h.DescrTotal)
	}
	dataEnd, err := end("the data section", h.DataOffset, h.DataSize)
	if err != nil {
		return err
	}
	if need := max(descEnd, dataEnd); need > size {
		return truncated(need, size)
	}
	return nil
}

func inspectSIF(r io.ReaderAt, size int64, info *Info) error {
	if err := checkSIFHeader(r, size); err != nil {
		return err
	}
	fimg, err := sif.LoadContainer(readOnlyRW{r}, sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return fmt.Errorf("load SIF: %w", err)
	}
	defer fimg.UnloadContainer() //nolint:errcheck // nothing to close
	ds, err := fimg.GetDescriptors()
	if err != nil {
		return fmt.Errorf("list SIF descriptors: %w", err)
	}
	// Truncation first: a short download still loads, and only data reads fail later.
	need := int64(0)
	for _, d := range ds {
		e, err := end(fmt.Sprintf("descriptor %d", d.ID()), d.Offset(), d.Size())
		if err != nil {
			return err
		}
		need = max(need, e)
	}
	if need > size {
		return truncated(need, size)
	}

	si := &SIFInfo{
		ID:       fimg.ID(),
		Arch:     fimg.PrimaryArch(),
		Created:  fimg.CreatedAt().UTC(),
		Modified: fimg.ModifiedAt().UTC(),
	}
	info.SIF = si
	var meta, deffile, primary *sif.Descriptor
	ociSIF := false
	for i := range ds {
		d := ds[i]
		out := Descriptor{
			ID:      d.ID(),
			GroupID: d.GroupID(),
			Type:    d.DataType().String(),
			Name:    d.Name(),
			Offset:  d.Offset(),
			Size:    d.Size(),
		}
		out.LinkedID, out.LinkIsGroup = d.LinkedID()
		switch d.DataType() {
		case sif.DataPartition:
			if fsType, pt, arch, err := d.PartitionMetadata(); err == nil {
				out.FSType, out.PartType, out.Arch = fsType.String(), pt.String(), arch
				if pt == sif.PartPrimSys && primary == nil {
					primary = &ds[i]
				}
			}
		case sif.DataSignature:
			if ht, fp, err := d.SignatureMetadata(); err == nil {
				out.HashType = ht.String()
				if len(fp) > 0 {
					out.Fingerprint = strings.ToUpper(hex.EncodeToString(fp))
					if !slices.Contains(si.Signers, out.Fingerprint) {
						si.Signers = append(si.Signers, out.Fingerprint)
					}
				}
			}
		case sif.DataGenericJSON:
			if d.Name() == MetadataDescriptorName && meta == nil {
				meta = &ds[i]
			}
		case sif.DataDeffile:
			if deffile == nil {
				deffile = &ds[i]
			}
		case sif.DataOCIRootIndex:
			ociSIF = true
		}
		si.Descriptors = append(si.Descriptors, out)
	}

	var attrs *Attributes
	if meta != nil {
		b, err := readObject(r, meta)
		if err == nil {
			attrs, err = DecodeMetadata(b)
		}
		if err != nil {
			info.Warnings = append(info.Warnings, fmt.Sprintf("%s is unreadable (%v); reading the root file system instead", MetadataDescriptorName, err))
			attrs = nil
		}
	}
	var rootErr error
	if primary != nil {
		fsType, _, _, _ := primary.PartitionMetadata()
		sec := io.NewSectionReader(r, primary.Offset(), primary.Size())
		if fsType == sif.FsSquash {
			info.Compression = squashCompression(sec)
		}
		if attrs == nil {
			switch fsType {
			case sif.FsSquash:
				var warns []string
				attrs, warns, rootErr = readSquashAttributes(sec, primary.Size())
				info.Warnings = append(info.Warnings, warns...)
			case sif.FsEncryptedSquashfs, sif.FsGocryptfsSquashfs:
				info.Warnings = append(info.Warnings, fmt.Sprintf("the root file system is encrypted (%s) and the image has no %s; metadata unavailable", fsType, MetadataDescriptorName))
			case sif.FsExt3:
				info.Warnings = append(info.Warnings, "the root file system is ext3, which is not readable natively; metadata unavailable")
			default:
				info.Warnings = append(info.Warnings, fmt.Sprintf("the root file system is %s; metadata unavailable", fsType))
			}
		}
	} else if attrs == nil {
		if ociSIF {
			info.Warnings = append(info.Warnings, "this is an OCI-SIF image (SingularityCE 4); its metadata lives in the OCI config, which is not read")
		} else {
			info.Warnings = append(info.Warnings, "the SIF has no primary system partition; metadata unavailable")
		}
	}
	if deffile != nil && (attrs == nil || attrs.Deffile == "") {
		if b, err := readObject(r, deffile); err == nil {
			if attrs == nil {
				attrs = &Attributes{}
			}
			attrs.Deffile = strings.TrimRight(string(b), "\n")
		}
	}
	info.Attributes = attrs
	return rootErr
}

// readObject reads a (small) SIF data object.
func readObject(r io.ReaderAt, d *sif.Descriptor) ([]byte, error) {
	if d.Size() > MaxFileRead {
		return nil, fmt.Errorf("object %d is %d bytes, limit %d", d.ID(), d.Size(), MaxFileRead)
	}
	b := make([]byte, d.Size())
	if _, err := r.ReadAt(b, d.Offset()); err != nil && !(errors.Is(err, io.EOF) && len(b) == 0) {
		return nil, fmt.Errorf("read object %d: %w", d.ID(), err)
	}
	return b, nil
}

// readSquashAttributes reads /.singularity.d and the SCIF apps like
// `apptainer inspect` does when there is no inspect-metadata.json.
func readSquashAttributes(r io.ReaderAt, size int64) (*Attributes, []string, error) {
	s, err := openSquashfs(r, size)
	if err != nil {
		return nil, nil, err
	}
	rd := &sectionReader{s: s}
	if _, err := s.lookup("/.singularity.d"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &Attributes{}, []string{"the image has no /.singularity.d directory (not built by Singularity/Apptainer?); metadata unavailable"}, nil
		}
		return nil, nil, err
	}
	const base = "/.singularity.d"
	a := &Attributes{}
	a.Labels = rd.labels(base + "/labels.json")
	a.Runscript = rd.text(base + "/runscript")
	a.Startscript = rd.text(base + "/startscript")
	a.Test = rd.text(base + "/test")
	a.Helpfile = rd.text(base + "/runscript.help")
	a.Environment = rd.environment(base + "/env")
	a.Deffile = rd.text(base + "/Singularity")
	if apps, err := s.readDirNames("/scif/apps"); err == nil {
		sort.Strings(apps)
		for _, app := range apps {
			p := "/scif/apps/" + app + "/scif"
			if in, err := s.lookup(p); err != nil || !in.isDir() {
				rd.note(err)
				continue
			}
			aa := &AppAttributes{
				Labels:      rd.labels(p + "/labels.json"),
				Runscript:   rd.text(p + "/runscript"),
				Startscript: rd.text(p + "/startscript"),
				Test:        rd.text(p + "/test"),
				Helpfile:    rd.text(p + "/runscript.help"),
				Environment: rd.environment(p + "/env"),
			}
			if a.Apps == nil {
				a.Apps = map[string]*AppAttributes{}
			}
			a.Apps[app] = aa
		}
	} else {
		rd.note(err)
	}
	if rd.err != nil {
		return nil, rd.warns, rd.err
	}
	return a, rd.warns, nil
}

// sectionReader reads metadata files, keeping the first hard error (a
// damaged file system) and turning soft ones (loops, odd file types) into warnings.
type sectionReader struct {
	s     *squashFS
	warns []string
	err   error
}

func (rd *sectionReader) note(err error) {
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, errSquashfs):
		if rd.err == nil {
			rd.err = err
		}
	default:
		rd.warns = append(rd.warns, err.Error())
	}
}

func (rd *sectionReader) text(p string) string {
	if rd.err != nil {
		return ""
	}
	b, err := rd.s.readFile(p)
	if err != nil {
		rd.note(err)
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}

func (rd *sectionReader) labels(p string) map[string]string {
	t := rd.text(p)
	if t == "" {
		return nil
	}
	m, err := decodeLabels([]byte(t))
	if err != nil {
		rd.warns = append(rd.warns, fmt.Sprintf("%s: %v", p, err))
	}
	return m
}

// environment reads env/10-docker*.sh and env/9*-environment.sh, keyed by
// their in-container paths.
func (rd *sectionReader) environment(dir string) map[string]string {
	names, err := rd.s.readDirNames(dir)
	if err != nil {
		rd.note(err)
		return nil
	}
	sort.Strings(names)
	var env map[string]string
	for _, n := range names {
		docker, _ := path.Match("10-docker*.sh", n)
		custom, _ := path.Match("9*-environment.sh", n)
		if !docker && !custom {
			continue
		}
		p := dir + "/" + n
		b, err := rd.s.readFile(p)
		if err != nil {
			rd.note(err)
			continue
		}
		if env == nil {
			env = map[string]string{}
		}
		env[p] = strings.TrimRight(string(b), "\n")
	}
	return env
}

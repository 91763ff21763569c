// Package verify checks the PGP signatures of SIF images with
// github.com/apptainer/sif/v2/pkg/integrity. It is separate from package
// image because the crypto stack it pulls in is large.
package verify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/apptainer/sif/v2/pkg/integrity"
	"github.com/apptainer/sif/v2/pkg/sif"
)

// ErrNoKey is wrapped when the image is signed but no keyring holds the
// signer's public key.
var ErrNoKey = errors.New("no public key for the signer")

// ErrNotSigned is wrapped when the image has no signature at all.
var ErrNotSigned = errors.New("image is not signed")

// ErrTampered is wrapped when a signature does not match the data it covers.
var ErrTampered = errors.New("signature verification failed")

// Result is what Verify found.
type Result struct {
	// Signers are the fingerprints (upper-case hex) of every signature in
	// the image, verified or not.
	Signers []string `json:"signers"`
	// Verified is true when every signed object checked out against the keyrings.
	Verified bool `json:"verified"`
	// Objects are the IDs of the data objects covered by the verified signatures.
	Objects []uint32 `json:"objects,omitempty"`
}

// Verify checks the signatures of the SIF at path with the armored or binary
// PGP keyrings given. Without keyrings it still reports the signers and
// returns an error wrapping ErrNoKey; a modified object gives an error
// wrapping ErrTampered that names it.
func Verify(path string, keyrings ...io.Reader) (Result, error) {
	var res Result
	var keys openpgp.EntityList
	for i, kr := range keyrings {
		el, err := ReadKeyRing(kr)
		if err != nil {
			return res, fmt.Errorf("verify: keyring %d: %w", i+1, err)
		}
		keys = append(keys, el...)
	}
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		return res, fmt.Errorf("verify %s: not a readable SIF image (run `sregistry inspect` on it): %w", path, err)
	}
	defer f.UnloadContainer() //nolint:errcheck // read-only

	v, err := integrity.NewVerifier(f, integrity.OptVerifyWithKeyRing(keys))
	if err != nil {
		if errors.Is(err, &integrity.SignatureNotFoundError{}) || errors.Is(err, sif.ErrObjectNotFound) {
			return res, fmt.Errorf("verify %s: %w", path, ErrNotSigned)
		}
		return res, fmt.Errorf("verify %s: %w", path, err)
	}
	fps, err := v.AnySignedBy()
	if err != nil {
		return res, fmt.Errorf("verify %s: read signatures: %w", path, err)
	}
	for _, fp := range fps {
		res.Signers = append(res.Signers, strings.ToUpper(hex.EncodeToString(fp)))
	}
	if len(res.Signers) == 0 {
		return res, fmt.Errorf("verify %s: %w", path, ErrNotSigned)
	}
	if len(keys) == 0 {
		return res, fmt.Errorf("verify %s: cannot verify: %w %s; pass --keyring <file> (e.g. ~/.apptainer/keys/pgp-public)",
			path, ErrNoKey, strings.Join(res.Signers, ", "))
	}
	for _, fp := range fps {
		if len(keys.KeysById(fpKeyID(fp))) == 0 {
			return res, fmt.Errorf("verify %s: cannot verify: %w %X; pass --keyring <file> holding it", path, ErrNoKey, fp)
		}
	}
	var objects []uint32
	v, err = integrity.NewVerifier(f, integrity.OptVerifyWithKeyRing(keys),
		integrity.OptVerifyCallback(func(r integrity.VerifyResult) bool {
			for _, d := range r.Verified() {
				objects = append(objects, d.ID())
			}
			return false
		}))
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", path, err)
	}
	if err := v.Verify(); err != nil {
		var oe *integrity.ObjectIntegrityError
		if errors.As(err, &oe) {
			return res, fmt.Errorf("verify %s: %w: data object %d was modified after signing (%v); download the image again", path, ErrTampered, oe.ID, err)
		}
		return res, fmt.Errorf("verify %s: %w: %v", path, ErrTampered, err)
	}
	res.Verified = true
	res.Objects = objects
	return res, nil
}

// fpKeyID is the key ID (low 64 bits) of a v4 fingerprint.
func fpKeyID(fp []byte) uint64 {
	var id uint64
	for _, b := range fp[max(0, len(fp)-8):] {
		id = id<<8 | uint64(b)
	}
	return id
}

// ReadKeyRing reads an armored or binary PGP keyring.
func ReadKeyRing(r io.Reader) (openpgp.EntityList, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	if bytes.Contains(b[:min(len(b), 1024)], []byte("-----BEGIN PGP")) {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("read armored keyring: %w", err)
		}
		return el, nil
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read keyring (neither armored nor binary OpenPGP): %w", err)
	}
	return el, nil
}

// DefaultKeyringPaths are the local public keyrings of Apptainer and
// SingularityCE, relative to the home directory.
var DefaultKeyringPaths = []string{
	filepath.Join(".apptainer", "keys", "pgp-public"),
	filepath.Join(".singularity", "sypgp", "pgp-public"),
}

// DefaultKeyrings opens the default keyrings under home ($HOME when empty)
// that exist. Callers pass the readers to Verify and then call closeAll.
func DefaultKeyrings(home string) (keyrings []io.Reader, paths []string, closeAll func(), err error) {
	if home == "" {
		if home, err = os.UserHomeDir(); err != nil {
			return nil, nil, func() {}, fmt.Errorf("find the default keyrings: %w", err)
		}
	}
	var files []*os.File
	closeAll = func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, rel := range DefaultKeyringPaths {
		p := filepath.Join(home, rel)
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			closeAll()
			return nil, nil, func() {}, fmt.Errorf("open keyring %s: %w", p, err)
		}
		files = append(files, f)
		keyrings = append(keyrings, f)
		paths = append(paths, p)
	}
	return keyrings, paths, closeAll, nil
}

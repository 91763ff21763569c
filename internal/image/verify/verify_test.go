package verify

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/apptainer/sif/v2/pkg/integrity"
	"github.com/apptainer/sif/v2/pkg/sif"
)

const busyboxPath = "../../../../shared/testdata/busybox_amd64.sif"

const busyboxSigner = "1137E72E6816BFC06D9CAA0D15F3F4F4F14B03B2"

// signedSIF writes a SIF with a Def.FILE and a partition, signed by a fresh key.
func signedSIF(t *testing.T, signed bool) (path string, e *openpgp.Entity) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "signed.sif")
	def, err := sif.NewDescriptorInput(sif.DataDeffile, strings.NewReader("Bootstrap: docker\nFrom: alpine\n"))
	if err != nil {
		t.Fatal(err)
	}
	part, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(bytes.Repeat([]byte("hsqs partition data "), 500)),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := sif.CreateContainerAtPath(path, sif.OptCreateWithDescriptors(def, part), sif.OptCreateDeterministic())
	if err != nil {
		t.Fatal(err)
	}
	e, err = openpgp.NewEntity("sregistry test", "", "test@example.org", &packet.Config{DefaultHash: crypto.SHA256, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if signed {
		s, err := integrity.NewSigner(f, integrity.OptSignWithEntity(e))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Sign(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.UnloadContainer(); err != nil {
		t.Fatal(err)
	}
	return path, e
}

func publicKeyring(t *testing.T, e *openpgp.Entity, armored bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := io.Writer(&buf)
	var aw io.WriteCloser
	if armored {
		var err error
		if aw, err = armor.Encode(&buf, openpgp.PublicKeyType, nil); err != nil {
			t.Fatal(err)
		}
		w = aw
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if aw != nil {
		aw.Close()
	}
	return buf.Bytes()
}

func TestVerify(t *testing.T) {
	path, e := signedSIF(t, true)
	fp := strings.ToUpper(fmtHex(e.PrimaryKey.Fingerprint))
	other, _ := openpgp.NewEntity("other", "", "o@example.org", &packet.Config{RSABits: 2048})

	for _, tc := range []struct {
		name     string
		keyrings func() []io.Reader
		tamper   bool
		errIs    error
		errText  string
	}{
		{name: "armored keyring", keyrings: func() []io.Reader { return []io.Reader{bytes.NewReader(publicKeyring(t, e, true))} }},
		{name: "binary keyring", keyrings: func() []io.Reader { return []io.Reader{bytes.NewReader(publicKeyring(t, e, false))} }},
		{name: "no keyring", keyrings: func() []io.Reader { return nil }, errIs: ErrNoKey, errText: "cannot verify: no public key for the signer " + fp + "; pass --keyring"},
		{name: "wrong key", keyrings: func() []io.Reader { return []io.Reader{bytes.NewReader(publicKeyring(t, other, true))} }, errIs: ErrNoKey, errText: fp},
		{name: "tampered", tamper: true, keyrings: func() []io.Reader { return []io.Reader{bytes.NewReader(publicKeyring(t, e, true))} }, errIs: ErrTampered, errText: "data object 2 was modified"},
		{name: "bad keyring", keyrings: func() []io.Reader { return []io.Reader{strings.NewReader("garbage")} }, errText: "keyring 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := path
			if tc.tamper {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				i := bytes.LastIndex(b, []byte("partition data"))
				b[i] ^= 0xff
				p = filepath.Join(t.TempDir(), "tampered.sif")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Verify(p, tc.keyrings()...)
			if tc.errText == "" {
				if err != nil || !res.Verified || len(res.Objects) != 2 {
					t.Fatalf("res %+v, err %v", res, err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.errText) || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
					t.Fatalf("err = %v; want %v containing %q", err, tc.errIs, tc.errText)
				}
				if res.Verified {
					t.Error("Verified must be false on error")
				}
			}
			if tc.name != "bad keyring" && (len(res.Signers) != 1 || res.Signers[0] != fp) {
				t.Errorf("signers = %v, want [%s]", res.Signers, fp)
			}
		})
	}
}

func TestVerifyUnsigned(t *testing.T) {
	path, _ := signedSIF(t, false)
	if _, err := Verify(path); !errors.Is(err, ErrNotSigned) {
		t.Errorf("err = %v", err)
	}
	notSIF := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notSIF, []byte("<html>"), 0o644)
	if _, err := Verify(notSIF); err == nil || !strings.Contains(err.Error(), "not a readable SIF") {
		t.Errorf("err = %v", err)
	}
}

func TestVerifyBusybox(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("real image %s not available: %v", busyboxPath, err)
		}
		t.Skipf("real image %s not available: %v", busyboxPath, err)
	}
	res, err := Verify(busyboxPath)
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), busyboxSigner) {
		t.Errorf("err = %v", err)
	}
	if len(res.Signers) != 1 || res.Signers[0] != busyboxSigner {
		t.Errorf("signers = %v", res.Signers)
	}
}

func TestDefaultKeyrings(t *testing.T) {
	home := t.TempDir()
	_, e := signedSIF(t, false)
	ap := filepath.Join(home, DefaultKeyringPaths[0])
	sp := filepath.Join(home, DefaultKeyringPaths[1])
	os.MkdirAll(filepath.Dir(ap), 0o700)
	os.MkdirAll(filepath.Dir(sp), 0o700)
	os.WriteFile(ap, publicKeyring(t, e, false), 0o600)
	os.WriteFile(sp, publicKeyring(t, e, true), 0o600)
	krs, paths, closeAll, err := DefaultKeyrings(home)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if len(krs) != 2 || paths[0] != ap || paths[1] != sp {
		t.Fatalf("paths = %v", paths)
	}
	for _, kr := range krs {
		el, err := ReadKeyRing(kr)
		if err != nil || len(el) != 1 {
			t.Errorf("keyring: %d keys, %v", len(el), err)
		}
	}
	krs, _, closeEmpty, err := DefaultKeyrings(t.TempDir())
	defer closeEmpty()
	if err != nil || len(krs) != 0 {
		t.Errorf("empty home: %v %v", krs, err)
	}
}

func fmtHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

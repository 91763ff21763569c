package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sregistry/sregistry/internal/image/verify"
)

// runVerify checks the SIF signatures of path with the given keyrings, or
// with the local apptainer/singularity public keyrings when none is given.
func runVerify(f *Factory, path string, keyrings []string) error {
	var readers []io.Reader
	if len(keyrings) > 0 {
		for _, k := range keyrings {
			fh, err := os.Open(k)
			if err != nil {
				return fmt.Errorf("keyring: %w", err)
			}
			defer fh.Close()
			readers = append(readers, fh)
		}
	} else {
		rs, paths, closeAll, err := verify.DefaultKeyrings(f.Home)
		if err != nil {
			return err
		}
		defer closeAll()
		readers = rs
		if len(paths) > 0 {
			f.Infof("using keyrings: %s", strings.Join(paths, ", "))
		}
	}
	res, err := verify.Verify(path, readers...)
	for _, s := range res.Signers {
		fmt.Fprintf(f.IO.Out, "signer %s\n", s)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(f.IO.Out, "Verified: %d signed object(s) intact, signed by a key in the keyring\n", len(res.Objects))
	return nil
}

package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/names"
)

const rootLong = `sregistry finds, pulls and catalogs Singularity/Apptainer images built in
GitLab CI, and inspects them without a singularity binary.

Settings come from the environment, then the secrets file (~/.sregistry, or
SREGISTRY_CLIENT_SECRETS), then defaults:
  SREGISTRY_CLIENT          active backend (gitlab)
  SREGISTRY_GITLAB_TOKEN    GitLab access token (read_api scope); never printed
  SREGISTRY_GITLAB_BASE     GitLab URL (default https://gitlab.com)
  SREGISTRY_GITLAB_JOB      default CI job name (default build)
  SREGISTRY_GITLAB_FOLDER   artifact folder holding images (default build)
  SREGISTRY_DATABASE        folder of the catalog sregistry.db (default ~/.singularity)
  SREGISTRY_STORAGE         image storage root (default ~/.singularity/shub)
  SREGISTRY_DISABLE         no catalog or storage (pull writes to the current folder)
  SREGISTRY_TMPDIR          accepted for compatibility; unused (downloads are written
                            beside their destination so the final rename is atomic)
  SREGISTRY_HTTPS_NOVERIFY  skip TLS verification (testing only)

Exit status: 0 success, 1 error (one "ERROR ..." line on stderr), 2 usage error.`

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:           "sregistry",
		Short:         "Singularity Global Client: pull and catalog images built in GitLab CI",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		RunE: func(cmd *cobra.Command, args []string) error {
			if showVersion {
				fmt.Fprintln(f.IO.Out, Version)
				return nil
			}
			fmt.Fprintf(f.IO.Out, "\nSingularity Registry Global Client v%s\n", Version)
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().BoolVar(&showVersion, "version", false, "print the version and exit")
	pf := root.PersistentFlags()
	pf.BoolVar(&f.Debug, "debug", false, "print debug messages (never secrets) on stderr")
	pf.BoolVarP(&f.Quiet, "quiet", "q", false, "suppress the client header, progress and informational messages")
	pf.BoolVar(&f.NoTTY, "no-tty", false, "never draw progress bars, even on a terminal")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &FlagError{Err: err} })

	root.AddCommand(
		newVersionCmd(f),
		newImagesCmd(f),
		newGetCmd(f),
		newInspectCmd(f),
		newAddCmd(f),
		newRmCmd(f),
		newMvCmd(f),
		newRenameCmd(f),
		newBackendCmd(f),
		newShellCmd(f),
		newSearchCmd(f),
		newPullCmd(f),
	)
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

func newVersionCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(f.IO.Out, Version)
			return nil
		},
	}
}

// legacyJobQuery turns the original's pull string "job_id,group/proj[:tag][,job_name]"
// into a catalog query on the pull metadata's job id.
func legacyJobQuery(s string) (catalog.Query, bool) {
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return catalog.Query{}, false
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || id <= 0 {
		return catalog.Query{}, false
	}
	path := parts[1]
	if len(parts) == 3 {
		// A tag may follow the job name: "1,grp/proj,build:dev".
		if i := strings.IndexAny(parts[2], ":@"); i >= 0 {
			path += parts[2][i:]
		}
	}
	n, err := names.Parse(path)
	if err != nil {
		return catalog.Query{}, false
	}
	return catalog.Query{Collection: n.FullCollection(), Name: n.Image, Tag: n.Tag, Version: n.Version, JobID: id}, true
}

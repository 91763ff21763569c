// Command sregistry is the Singularity Global Client: search, pull and keep a
// local catalog of Singularity/Apptainer images built in GitLab CI.
package main

import (
	"os"

	"github.com/sregistry/sregistry/internal/cli"
)

func main() { os.Exit(cli.Main()) }

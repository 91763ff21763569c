// Command sregistry-demo runs sregistry end to end, offline: it starts the
// GitLab emulator on loopback with real Singularity images as CI artifacts,
// then runs search -> pull -> images -> get -> inspect in a temporary HOME.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/sregistry/sregistry/internal/demo"
)

func main() {
	keep := flag.Bool("keep", false, "keep the temporary HOME, catalog and storage")
	sifPath := flag.String("sif", "", "SIF image to serve (default ../shared/testdata/busybox_amd64.sif)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := demo.Run(ctx, demo.Options{SIF: *sifPath, Keep: *keep, Stdout: os.Stdout, Stderr: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

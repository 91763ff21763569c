// Command gitlab-emulator runs the sregistry GitLab emulator on loopback: a
// GitLab REST v4 host and an object-storage host serving job artifacts. It
// prints one JSON line ({"base":...,"storage":...,"token":...}) on stdout and
// serves until SIGINT or SIGTERM. See gitlabemu.RunStandalone for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sregistry/sregistry/internal/gitlabemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := gitlabemu.RunStandalone(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "ERROR gitlab-emulator:", err)
		stop()
		os.Exit(2)
	}
}

// Package cli implements the sregistry commands. Each command file holds an
// options struct, a cobra constructor and a run function; the logic lives in
// the packages the factory hands out (config, catalog, storage, backend, image).
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sregistry/sregistry/internal/iostreams"
)

// Version is the sregistry version, set at build time with
// -ldflags "-X github.com/sregistry/sregistry/internal/cli.Version=...".
var Version = "0.3.0-dev"

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Main runs sregistry with the process's arguments, streams and environment,
// and returns the exit code. Ctrl-C cancels the context so partial work is
// cleaned up.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	home, _ := os.UserHomeDir()
	f := NewFactory(iostreams.System(), os.LookupEnv, home)
	return Run(ctx, f, os.Args[1:])
}

// Run executes one command line and maps the outcome to an exit code:
// 0 success, 1 error (one "ERROR ..." line on stderr), 2 usage error.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	defer f.Close()
	if err == nil {
		return ExitOK
	}
	return reportError(f, err)
}

func reportError(f *Factory, err error) int {
	var fe *FlagError
	switch {
	case errors.As(err, &fe) || isCobraUsageError(err):
		fmt.Fprintf(f.IO.ErrOut, "ERROR %s\n", oneLine(err.Error()))
		fmt.Fprintln(f.IO.ErrOut, "Run 'sregistry --help' (or 'sregistry <command> --help') for usage.")
		return ExitUsage
	case errors.Is(err, errSilent):
		return ExitError
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(f.IO.ErrOut, "ERROR interrupted")
		return ExitError
	}
	msg := err.Error()
	fmt.Fprintf(f.IO.ErrOut, "ERROR %s\n", oneLine(msg))
	var he *HintError
	if errors.As(err, &he) && he.Hint != "" {
		fmt.Fprintf(f.IO.ErrOut, "      %s\n", he.Hint)
	}
	return ExitError
}

// oneLine keeps an error on one line (multi-line wrapped messages are joined).
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// FlagError is a usage error: bad flags or arguments (exit code 2).
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// flagErrorf builds a FlagError.
func flagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// HintError is an error with a next step for the user, printed on a second line.
type HintError struct {
	Err  error
	Hint string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// withHint attaches a next step to err.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &HintError{Err: err, Hint: hint}
}

// errSilent means the command already reported its failure.
var errSilent = errors.New("silent failure")

func isCobraUsageError(err error) bool {
	m := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "if any flags in the group"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// exactArgs is cobra.ExactArgs with a FlagError and a helpful message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return flagErrorf("%s expects %s (got %d argument(s))", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

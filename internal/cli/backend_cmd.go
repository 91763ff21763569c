package cli

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sregistry/sregistry/internal/config"
)

func newBackendCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backend <ls|status|activate|deactivate|add|rm|delete>",
		Short: "Manage backends and their settings in the secrets file",
		Long: `Manage the secrets file (~/.sregistry, or SREGISTRY_CLIENT_SECRETS): the
active backend and per-backend settings. The file keeps sregistry-cli's JSON
shape, is written only when something changes, atomically, with mode 0600.
Tokens are never printed (shown redacted).`,
		Example: `  sregistry backend add gitlab base https://gitlab.example.org
  echo "$TOKEN" | sregistry backend add gitlab token -
  sregistry backend activate gitlab
  sregistry backend status`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return flagErrorf("%s is not a recognized command", args[0])
			}
			return flagErrorf("You must provide a valid command: ls, status, activate, deactivate, add, rm, delete")
		},
	}
	cmd.AddCommand(newBackendLsCmd(f), newBackendStatusCmd(f), newBackendActivateCmd(f),
		newBackendDeactivateCmd(f), newBackendAddCmd(f), newBackendRmCmd(f), newBackendDeleteCmd(f))
	return cmd
}

func newBackendLsCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "ls [backend]",
		Aliases: []string{"list"},
		Short:   "List configured backends, or one backend's settings (secrets redacted)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			s := cfg.Secrets
			if len(args) == 1 {
				if js, ok := s.BackendJSON(args[0], false); ok {
					fmt.Fprintln(f.IO.Out, args[0])
					fmt.Fprintln(f.IO.Out, js)
					return nil
				}
				fmt.Fprintf(f.IO.Out, "%s is not a known client.\n", args[0])
			}
			fmt.Fprintln(f.IO.Out, "Backends Installed")
			for _, b := range s.Backends() {
				fmt.Fprintln(f.IO.Out, b)
			}
			if len(args) == 1 {
				return errSilentf(f, "")
			}
			return nil
		},
	}
}

// errSilentf reports nothing more (the message was printed) and exits 1.
func errSilentf(f *Factory, msg string) error {
	if msg != "" {
		fmt.Fprintln(f.IO.ErrOut, "ERROR "+msg)
	}
	return errSilent
}

func newBackendStatusCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show how many backends are configured and which is active",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			fmt.Fprintln(f.IO.Out, "[backend status]")
			fmt.Fprintf(f.IO.Out, "There are %d clients found in secrets.\n", len(cfg.Secrets.Backends()))
			switch cfg.ClientSource {
			case "env":
				fmt.Fprintf(f.IO.Out, "active: %s (from SREGISTRY_CLIENT)\n", cfg.Client)
			case "secrets":
				fmt.Fprintf(f.IO.Out, "active: %s\n", cfg.Client)
			default:
				fmt.Fprintf(f.IO.Out, "There is no active client. (default: %s)\n", cfg.Client)
			}
			return nil
		},
	}
}

func (f *Factory) checkBackendName(name string) error {
	if _, ok := f.Backends.Lookup(name); !ok {
		return flagErrorf("%s is not a known backend (available: %s)", name, strings.Join(f.Backends.Names(), ", "))
	}
	return nil
}

func newBackendActivateCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "activate <backend>",
		Short: "Make a backend the default for commands without a URI scheme",
		Args:  exactArgs(1, "a backend name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.ToLower(args[0])
			if err := f.checkBackendName(name); err != nil {
				return err
			}
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			cfg.Secrets.SetActive(name)
			if err := cfg.Secrets.Save(); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "[activate] %s\n", name)
			return nil
		},
	}
}

func newBackendDeactivateCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "deactivate",
		Short: "Clear the active backend",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if !cfg.Secrets.ClearActive() {
				fmt.Fprintln(f.IO.Out, "There is no active client")
				return nil
			}
			if err := cfg.Secrets.Save(); err != nil {
				return err
			}
			fmt.Fprintln(f.IO.Out, "[deactivated]")
			return nil
		},
	}
}

func newBackendDeleteCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <backend>",
		Short: "Remove a backend and all its settings from the secrets file",
		Args:  exactArgs(1, "a backend name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if !cfg.Secrets.DeleteBackend(args[0]) {
				return fmt.Errorf("%s is not a known client", args[0])
			}
			if err := cfg.Secrets.Save(); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "[delete] %s\n", args[0])
			return nil
		},
	}
}

// settingName applies sregistry-cli's rule: prefix SREGISTRY_<BACKEND>_ when
// missing, then upper-case the whole name ("token" -> SREGISTRY_GITLAB_TOKEN).
func settingName(backend, v string) string {
	prefix := "SREGISTRY_" + strings.ToUpper(backend) + "_"
	u := strings.ToUpper(v)
	if !strings.HasPrefix(u, prefix) {
		u = prefix + u
	}
	return u
}

func newBackendAddCmd(f *Factory) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "add <backend> <variable> <value|->",
		Short: "Set a backend setting (value '-' reads it from stdin)",
		Long: `Set a backend setting in the secrets file. The name gets the
SREGISTRY_<BACKEND>_ prefix and is upper-cased: "token" becomes
SREGISTRY_GITLAB_TOKEN. A value of "-" is read from standard input, which keeps
tokens out of your shell history. An existing value is kept unless --force.`,
		Example: `  sregistry backend add gitlab base https://gitlab.example.org
  sregistry backend add gitlab token - < ~/.gitlab-token`,
		Args: exactArgs(3, "<backend> <variable> <value>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			backend := strings.ToLower(args[0])
			if err := f.checkBackendName(backend); err != nil {
				return err
			}
			name, value := settingName(backend, args[1]), args[2]
			if value == "-" {
				var err error
				if value, err = readValue(f, name); err != nil {
					return err
				}
			} else if config.IsSecretName(name) {
				f.Warnf("%s given on the command line may be kept in your shell history; `sregistry backend add %s %s -` reads it from stdin", name, backend, strings.ToLower(args[1]))
			}
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			shown := value
			if config.IsSecretName(name) {
				shown = config.Redact(value)
			}
			if old, ok := cfg.Secrets.Get(backend, name); ok && !force {
				if config.IsSecretName(name) {
					old = config.Redact(old)
				}
				return withHint(fmt.Errorf("%s is already set as %s", name, old), "use --force to override")
			}
			cfg.Secrets.Set(backend, name, value)
			if err := cfg.Secrets.Save(); err != nil {
				return err
			}
			fmt.Fprintln(f.IO.Out, "[add]")
			fmt.Fprintf(f.IO.Out, "%s %s\n", name, shown)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "override an existing value")
	return cmd
}

func newBackendRmCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "rm <backend> <variable>",
		Aliases: []string{"remove"},
		Short:   "Remove a backend setting (the same name rules as add)",
		Args:    exactArgs(2, "<backend> <variable>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			backend := strings.ToLower(args[0])
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			name := settingName(backend, args[1])
			removed := cfg.Secrets.Unset(backend, name)
			if !removed && slices.Contains(cfg.Secrets.BackendKeys(backend), args[1]) {
				removed = cfg.Secrets.Unset(backend, args[1])
				name = args[1]
			}
			if !removed {
				return fmt.Errorf("%s is not set for %s", name, backend)
			}
			if err := cfg.Secrets.Save(); err != nil {
				return err
			}
			fmt.Fprintln(f.IO.Out, "[remove]")
			fmt.Fprintln(f.IO.Out, name)
			return nil
		},
	}
}

// readValue reads a setting's value from standard input: without echo when
// it is a terminal (tokens stay off the screen), else the first line.
func readValue(f *Factory, name string) (string, error) {
	if in, ok := f.IO.In.(*os.File); ok && f.IO.IsStdinTTY() {
		fmt.Fprintf(f.IO.ErrOut, "%s: ", name)
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(f.IO.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("no value entered for %s", name)
	}
	line, err := bufio.NewReader(f.IO.In).ReadString('\n')
	if v := strings.TrimSpace(line); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("no value on standard input for %s (%v)", name, err)
}

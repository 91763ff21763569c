package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sregistry/sregistry/internal/config"
	"github.com/sregistry/sregistry/internal/names"
)

func newShellCmd(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "shell [endpoint]",
		Short: "An interactive prompt that runs sregistry commands",
		Long: `Start a prompt where each line is an sregistry command without the leading
"sregistry" (e.g. "images", "pull 123,group/proj", "get group/proj").
On a terminal, arrow keys edit the line and recall history, which is kept in
~/.sregistry_history. Plain standard input works too (one command per line),
so a file of commands can be piped in. "exit", "quit" or Ctrl-D leaves.
An endpoint ("gitlab" or "gitlab://") selects the backend for the session.`,
		Example: `  sregistry shell gitlab
  printf 'images\nget group/proj\n' | sregistry shell`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			endpoint := ""
			if len(args) == 1 {
				endpoint = args[0]
				if !strings.Contains(endpoint, "://") {
					endpoint += "://"
				}
				scheme, _ := names.SplitScheme(endpoint)
				if err := f.checkBackendName(scheme); err != nil {
					return err
				}
				endpoint = scheme
			}
			return runShell(cmd.Context(), f, endpoint)
		},
	}
}

func runShell(ctx context.Context, f *Factory, endpoint string) error {
	if endpoint != "" {
		f.Env = overlayEnv(f.Env, "SREGISTRY_CLIENT", endpoint)
		f.cfg = nil
	}
	f.Header(endpoint)
	histPath := filepath.Join(f.Home, ".sregistry_history")
	var readLine func() (string, error)
	var addHistory func(string)
	if in, ok := f.IO.In.(*os.File); ok && f.IO.IsStdinTTY() && f.IO.IsStdoutTTY() {
		t := term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{in, f.IO.Out}, "sregistry> ")
		for _, h := range loadHistory(histPath) {
			t.History.Add(h)
		}
		readLine = func() (string, error) {
			old, err := term.MakeRaw(int(in.Fd()))
			if err != nil {
				return "", err
			}
			defer term.Restore(int(in.Fd()), old)
			return t.ReadLine()
		}
		addHistory = func(l string) { appendHistory(histPath, l) }
	} else {
		sc := bufio.NewScanner(f.IO.In)
		readLine = func() (string, error) {
			if !sc.Scan() {
				if sc.Err() != nil {
					return "", sc.Err()
				}
				return "", io.EOF
			}
			return sc.Text(), nil
		}
		addHistory = func(string) {}
	}
	failures := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		line, err := readLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "exit" || line == "quit" {
			break
		}
		args, err := splitWords(line)
		if err != nil {
			fmt.Fprintf(f.IO.ErrOut, "ERROR %v\n", err)
			failures++
			continue
		}
		if !holdsSecret(args) {
			addHistory(line)
		}
		if len(args) > 0 && args[0] == "sregistry" {
			args = args[1:]
		}
		if len(args) > 0 && args[0] == "shell" {
			fmt.Fprintln(f.IO.ErrOut, "ERROR already in the shell")
			continue
		}
		sub := *f
		sub.cat, sub.store = nil, nil
		if code := Run(ctx, &sub, args); code != ExitOK {
			failures++
		}
	}
	if failures > 0 && !f.IO.IsStdinTTY() {
		return fmt.Errorf("%d command(s) failed", failures)
	}
	return nil
}

func overlayEnv(env func(string) (string, bool), key, val string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == key {
			return val, true
		}
		return env(k)
	}
}

func loadHistory(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 100 {
		lines = lines[len(lines)-100:]
	}
	return lines
}

func appendHistory(path, line string) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(fh, line)
	fh.Close()
}

// splitWords splits a command line like a POSIX shell does for words:
// whitespace separates, single quotes are literal, double quotes allow \" and \\.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// holdsSecret reports whether a command line carries a secret value inline
// (`backend add gitlab token glpat-...`), which must not reach the history
// file.
func holdsSecret(args []string) bool {
	if len(args) > 0 && args[0] == "sregistry" {
		args = args[1:]
	}
	if len(args) >= 5 && args[0] == "backend" && args[1] == "add" && args[4] != "-" {
		return config.IsSecretName(settingName(args[2], args[3]))
	}
	return false
}

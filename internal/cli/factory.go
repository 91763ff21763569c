package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/backend/all"
	"github.com/sregistry/sregistry/internal/catalog"
	"github.com/sregistry/sregistry/internal/config"
	"github.com/sregistry/sregistry/internal/iostreams"
	"github.com/sregistry/sregistry/internal/names"
	"github.com/sregistry/sregistry/internal/progress"
	"github.com/sregistry/sregistry/internal/storage"
)

// Factory hands commands their dependencies, built lazily so that local
// commands never touch the network and `version` never opens the catalog.
type Factory struct {
	IO       *iostreams.IOStreams
	Env      config.Env
	Home     string
	Now      func() time.Time
	Backends *backend.Registry

	// Global flags.
	Debug bool
	Quiet bool
	NoTTY bool

	cfg   *config.Config
	cat   *catalog.Catalog
	store *storage.Store
}

// NewFactory returns a Factory for the given streams, environment and home.
func NewFactory(ios *iostreams.IOStreams, env config.Env, home string) *Factory {
	return &Factory{IO: ios, Env: env, Home: home, Now: time.Now, Backends: all.Registry()}
}

// Config loads the configuration once.
func (f *Factory) Config() (*config.Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	cfg, err := config.Load(f.Env, f.Home)
	if err != nil {
		return nil, err
	}
	f.cfg = cfg
	if mode, exposed := cfg.Secrets.Exposed(); exposed {
		f.Warnf("%s holds a token and is readable by others (mode %04o); run: chmod 600 %s", cfg.Secrets.Path(), mode, cfg.Secrets.Path())
	}
	return cfg, nil
}

// Catalog opens the catalog once (creating its folder when missing).
func (f *Factory) Catalog(ctx context.Context, what string) (*catalog.Catalog, error) {
	if f.cat != nil {
		return f.cat, nil
	}
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if cfg.Disable {
		return nil, withHint(fmt.Errorf("%s requires using the sqlite database", what),
			"unset SREGISTRY_DISABLE (and SINGULARITY_DISABLE_CACHE) to use the local catalog")
	}
	if err := os.MkdirAll(cfg.DatabaseDir, 0o700); err != nil {
		return nil, fmt.Errorf("database location %s: %w", cfg.DatabaseDir, err)
	}
	cat, err := catalog.Open(ctx, cfg.DatabasePath())
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", cfg.DatabasePath(), err)
	}
	f.cat = cat
	return cat, nil
}

// Store returns the storage root bound to the catalog.
func (f *Factory) Store(ctx context.Context, what string) (*storage.Store, error) {
	if f.store != nil {
		return f.store, nil
	}
	cat, err := f.Catalog(ctx, what)
	if err != nil {
		return nil, err
	}
	cfg, _ := f.Config()
	if err := os.MkdirAll(cfg.Storage, 0o755); err != nil {
		return nil, fmt.Errorf("storage location %s: %w", cfg.Storage, err)
	}
	st, err := storage.New(cfg.Storage, cat)
	if err != nil {
		return nil, err
	}
	st.Now = f.Now
	f.store = st
	return st, nil
}

// Backend builds the backend for a URI scheme ("" = the active client).
func (f *Factory) Backend(scheme string) (backend.Backend, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	name := scheme
	if name == "" {
		name = cfg.Client
	}
	factory, ok := f.Backends.Lookup(name)
	if !ok {
		return nil, withHint(fmt.Errorf("%s is not a supported backend", name),
			fmt.Sprintf("available: %v; use a gitlab:// URI or `sregistry backend activate gitlab`", f.Backends.Names()))
	}
	if cfg.HTTPSNoVerify {
		f.Warnf("Verify of certificates disabled! ::TESTING USE ONLY:: (SREGISTRY_HTTPS_NOVERIFY)")
	}
	return factory(backend.Config{
		Setting:       func(n string) string { return cfg.Setting(name, n) },
		HTTPSNoVerify: cfg.HTTPSNoVerify,
		Debugf:        f.Debugf,
		Infof:         f.Infof,
		Now:           f.Now,
	})
}

// Close releases the catalog.
func (f *Factory) Close() {
	if f.cat != nil {
		f.cat.Close()
		f.cat = nil
		f.store = nil
	}
}

// Infof prints a message on stderr unless --quiet.
func (f *Factory) Infof(format string, args ...any) {
	if f.Quiet {
		return
	}
	fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
}

// Warnf prints a warning on stderr (even with --quiet).
func (f *Factory) Warnf(format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, "WARNING "+format+"\n", args...)
}

// Debugf prints a debug line on stderr with --debug.
func (f *Factory) Debugf(format string, args ...any) {
	if f.Debug {
		fmt.Fprintf(f.IO.ErrOut, "DEBUG "+format+"\n", args...)
	}
}

// Header prints the client header "[client|x] [database|y]" on stderr
// (never on stdout, which carries data) unless --quiet.
func (f *Factory) Header(client string) {
	if f.Quiet {
		return
	}
	cfg, err := f.Config()
	if err != nil {
		return
	}
	if client == "" {
		client = cfg.Client
	}
	fmt.Fprintf(f.IO.ErrOut, "[client|%s] [database|%s]\n", client, cfg.DatabaseLabel())
}

// Progress picks the progress renderer: a bar when stderr is a terminal, one
// summary line otherwise, nothing with --quiet.
func (f *Factory) Progress() progress.Reporter {
	switch {
	case f.Quiet:
		return progress.Discard()
	case f.IO.IsStderrTTY() && !f.NoTTY && !f.Debug:
		return progress.NewBar(f.IO.ErrOut)
	default:
		return progress.NewSummary(f.IO.ErrOut, f.Now)
	}
}

// lookup finds the catalog entry for a user query such as
// "group/proj:tag@version", "gitlab://group/proj" or the original's
// "job_id,group/proj[,job_name]" pull strings.
func (f *Factory) lookup(ctx context.Context, query, what string) (catalog.Container, error) {
	cat, err := f.Catalog(ctx, what)
	if err != nil {
		return catalog.Container{}, err
	}
	_, rest := names.SplitScheme(query)
	n, err := names.Parse(rest)
	if err != nil {
		return catalog.Container{}, &FlagError{Err: err}
	}
	c, err := cat.Get(ctx, catalog.Query{Collection: n.FullCollection(), Name: n.Image, Tag: n.Tag, Version: n.Version})
	if err == nil || !errors.Is(err, catalog.ErrNotFound) {
		return c, err
	}
	// The original named pulled images "<job_id>,<group>/<proj>[,<job>]";
	// we name them by project and keep the job id in the pull metadata.
	if jq, ok := legacyJobQuery(rest); ok {
		if c, err2 := cat.Get(ctx, jq); err2 == nil {
			return c, nil
		}
	}
	return catalog.Container{}, err
}

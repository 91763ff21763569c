// Package config resolves sregistry settings the way sregistry-cli did —
// environment, then the secrets file, then built-in defaults — without its
// habit of writing environment values and defaults back into the file.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Env looks up an environment variable (os.LookupEnv in production).
type Env func(key string) (string, bool)

// MapEnv is an Env backed by a map, for tests.
func MapEnv(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// DefaultClient is the backend used when neither a URI scheme, nor
// SREGISTRY_CLIENT, nor the secrets file names one. sregistry-cli defaulted
// to "hub" (Singularity Hub, now retired); GitLab is our only backend.
const DefaultClient = "gitlab"

// Defaults of the GitLab backend settings.
var gitlabDefaults = map[string]string{
	"SREGISTRY_GITLAB_BASE":   "https://gitlab.com",
	"SREGISTRY_GITLAB_JOB":    "build",
	"SREGISTRY_GITLAB_FOLDER": "build",
}

// Config is the resolved configuration of one sregistry invocation.
type Config struct {
	env     Env
	Home    string
	Secrets *Secrets

	Client        string // active backend: SREGISTRY_CLIENT env > secrets file > DefaultClient
	ClientSource  string // "env", "secrets" or "default"
	DatabaseDir   string // SREGISTRY_DATABASE (a folder), default ~/.singularity
	Storage       string // SREGISTRY_STORAGE, default ~/.singularity/shub
	Disable       bool   // SREGISTRY_DISABLE or SINGULARITY_DISABLE_CACHE: no catalog, no storage
	TmpDir        string // SREGISTRY_TMPDIR, default os.TempDir(); read for compatibility, downloads use their destination folder
	HTTPSNoVerify bool   // SREGISTRY_HTTPS_NOVERIFY
}

// Load resolves the configuration. home is the user's home directory ($HOME).
func Load(env Env, home string) (*Config, error) {
	if home == "" {
		if h, ok := env("HOME"); ok && h != "" {
			home = h
		} else {
			return nil, fmt.Errorf("cannot find the home directory: set HOME")
		}
	}
	c := &Config{env: env, Home: home}
	secretsPath := c.lookup("SREGISTRY_CLIENT_SECRETS", filepath.Join(home, ".sregistry"))
	s, err := LoadSecrets(expandHome(secretsPath, home))
	if err != nil {
		return nil, err
	}
	c.Secrets = s
	switch v, ok := env("SREGISTRY_CLIENT"); {
	case ok && v != "":
		c.Client, c.ClientSource = strings.ToLower(v), "env"
	case s.Active() != "":
		c.Client, c.ClientSource = s.Active(), "secrets"
	default:
		c.Client, c.ClientSource = DefaultClient, "default"
	}
	c.DatabaseDir = expandHome(c.lookup("SREGISTRY_DATABASE", filepath.Join(home, ".singularity")), home)
	c.Storage = expandHome(c.lookup("SREGISTRY_STORAGE", filepath.Join(home, ".singularity", "shub")), home)
	c.Disable = truthy(c.lookup("SREGISTRY_DISABLE", "")) || truthy(c.lookup("SINGULARITY_DISABLE_CACHE", ""))
	c.TmpDir = expandHome(c.lookup("SREGISTRY_TMPDIR", os.TempDir()), home)
	c.HTTPSNoVerify = truthy(c.lookup("SREGISTRY_HTTPS_NOVERIFY", ""))
	for _, p := range []*string{&c.DatabaseDir, &c.Storage, &c.TmpDir} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	return c, nil
}

// DatabasePath is the catalog file, <DatabaseDir>/sregistry.db.
func (c *Config) DatabasePath() string { return filepath.Join(c.DatabaseDir, "sregistry.db") }

// DatabaseLabel is how the client header names the database:
// "sqlite:///<abs path>" (four slashes, as sregistry-cli printed) or "dummy".
func (c *Config) DatabaseLabel() string {
	if c.Disable {
		return "dummy"
	}
	return "sqlite:///" + c.DatabasePath()
}

// Setting returns a backend setting: environment, then the secrets file's
// object for that backend, then the built-in default. Nothing is written back.
func (c *Config) Setting(backend, name string) string {
	if v, ok := c.env(name); ok && v != "" {
		return v
	}
	if v, ok := c.Secrets.Get(backend, name); ok && v != "" {
		return v
	}
	if backend == "gitlab" {
		return gitlabDefaults[name]
	}
	return ""
}

// SettingSource says where Setting found a value: "env", "secrets", "default" or "".
func (c *Config) SettingSource(backend, name string) string {
	if v, ok := c.env(name); ok && v != "" {
		return "env"
	}
	if v, ok := c.Secrets.Get(backend, name); ok && v != "" {
		return "secrets"
	}
	if backend == "gitlab" && gitlabDefaults[name] != "" {
		return "default"
	}
	return ""
}

// Env returns an environment variable.
func (c *Config) Env(name string) (string, bool) { return c.env(name) }

func (c *Config) lookup(name, def string) string {
	if v, ok := c.env(name); ok && v != "" {
		return v
	}
	return def
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "t", "1", "y":
		return true
	}
	return false
}

func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrecedenceEnvSecretsDefault(t *testing.T) {
	home := t.TempDir()
	secrets := filepath.Join(home, ".sregistry")
	orig := `{
    "hub": {"base": "https://singularity-hub.org/api"},
    "gitlab": {"SREGISTRY_GITLAB_TOKEN": "from-file", "SREGISTRY_GITLAB_JOB": "file-job"},
    "SREGISTRY_CLIENT": "gitlab"
}`
	if err := os.WriteFile(secrets, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		key  string
		want string
		src  string
	}{
		{"secrets file", nil, "SREGISTRY_GITLAB_TOKEN", "from-file", "secrets"},
		{"env wins", map[string]string{"SREGISTRY_GITLAB_TOKEN": "from-env"}, "SREGISTRY_GITLAB_TOKEN", "from-env", "env"},
		{"empty env ignored", map[string]string{"SREGISTRY_GITLAB_TOKEN": ""}, "SREGISTRY_GITLAB_TOKEN", "from-file", "secrets"},
		{"default base", nil, "SREGISTRY_GITLAB_BASE", "https://gitlab.com", "default"},
		{"default folder", nil, "SREGISTRY_GITLAB_FOLDER", "build", "default"},
		{"file job", nil, "SREGISTRY_GITLAB_JOB", "file-job", "secrets"},
		{"unset", nil, "SREGISTRY_GITLAB_OTHER", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(MapEnv(tc.env), home)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Setting("gitlab", tc.key); got != tc.want {
				t.Errorf("Setting(%s) = %q, want %q", tc.key, got, tc.want)
			}
			if got := c.SettingSource("gitlab", tc.key); got != tc.src {
				t.Errorf("source = %q, want %q", got, tc.src)
			}
			if err := c.Secrets.Save(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Nothing changed, so the file must be byte-identical (env values and
	// defaults are never written back).
	b, _ := os.ReadFile(secrets)
	if string(b) != orig {
		t.Fatalf("secrets file rewritten:\n%s", b)
	}
}

func TestPathsAndClient(t *testing.T) {
	home := t.TempDir()
	c, err := Load(MapEnv(map[string]string{"HOME": home}), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Client != "gitlab" || c.ClientSource != "default" {
		t.Errorf("client = %s (%s)", c.Client, c.ClientSource)
	}
	if want := filepath.Join(home, ".singularity", "sregistry.db"); c.DatabasePath() != want {
		t.Errorf("db = %s, want %s", c.DatabasePath(), want)
	}
	if want := "sqlite:///" + filepath.Join(home, ".singularity", "sregistry.db"); c.DatabaseLabel() != want {
		t.Errorf("label = %s", c.DatabaseLabel())
	}
	if !strings.HasPrefix(c.DatabaseLabel(), "sqlite:////") {
		t.Errorf("label should have four slashes: %s", c.DatabaseLabel())
	}
	if want := filepath.Join(home, ".singularity", "shub"); c.Storage != want {
		t.Errorf("storage = %s", c.Storage)
	}
	c, _ = Load(MapEnv(map[string]string{"SREGISTRY_CLIENT": "GitLab", "SREGISTRY_DISABLE": "Yes",
		"SREGISTRY_STORAGE": "~/imgs", "SREGISTRY_DATABASE": "~/db"}), home)
	if c.Client != "gitlab" || c.ClientSource != "env" || !c.Disable || c.DatabaseLabel() != "dummy" {
		t.Errorf("env client/disable not honoured: %+v", c)
	}
	if c.Storage != filepath.Join(home, "imgs") || c.DatabaseDir != filepath.Join(home, "db") {
		t.Errorf("~ not expanded: %s %s", c.Storage, c.DatabaseDir)
	}
	if _, err := os.Stat(filepath.Join(home, ".sregistry")); !os.IsNotExist(err) {
		t.Errorf("loading must not create the secrets file")
	}
}

func TestSecretsEditKeepsOrderAndMode(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, "sub", "secrets.json")
	s, err := LoadSecrets(p)
	if err != nil {
		t.Fatal(err)
	}
	s.Set("zeta", "A", "1")
	s.Set("gitlab", "SREGISTRY_GITLAB_TOKEN", "glpat-abcdefghijklmnop")
	s.SetActive("gitlab")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	s2, err := LoadSecrets(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s2.Backends(), ","); got != "zeta,gitlab" {
		t.Errorf("order = %s", got)
	}
	if s2.Active() != "gitlab" {
		t.Errorf("active = %q", s2.Active())
	}
	js, _ := s2.BackendJSON("gitlab", false)
	if strings.Contains(js, "abcdefghijklmnop") || !strings.Contains(js, "mnop") {
		t.Errorf("token not redacted: %s", js)
	}
	if !s2.Unset("gitlab", "SREGISTRY_GITLAB_TOKEN") || s2.Unset("gitlab", "nope") {
		t.Error("unset")
	}
	if !s2.DeleteBackend("gitlab") || s2.Active() != "" {
		t.Error("delete backend should clear the active key")
	}
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), "gitlab") {
		t.Errorf("gitlab still present:\n%s", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestSecretsBadJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	os.WriteFile(p, []byte("[1,2]"), 0o600)
	if _, err := LoadSecrets(p); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Fatalf("err = %v", err)
	}
}

package gitlab

import (
	"os"
	"strconv"
	"testing"

	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/backend/backendtest"
	"github.com/sregistry/sregistry/internal/gitlabemu"
)

func TestContractEmulator(t *testing.T) {
	e := startEmu(t, gitlabemu.Options{StorageHost: "127.0.0.2", TreeAPI: true})
	e.srv.AddProject(gitlabemu.Project{Path: "contract/sub/proj", Visibility: gitlabemu.Private})
	e.addJob("contract/sub/proj", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Data: []byte("older")}}})
	j := e.addJob("contract/sub/proj", gitlabemu.Job{Name: "build", Artifacts: []gitlabemu.Artifact{{Path: "build/Singularity.sif", Size: 3 << 20}}})
	backendtest.RunContract(t, e.backend(nil), backendtest.Fixture{
		Project: "contract/sub/proj",
		JobID:   j.ID,
		SHA256:  genSHA(t, j.ID, "build/Singularity.sif", 3<<20),
	})
}

// TestContractRealGitLab runs the contract against a real GitLab when
// SREGISTRY_TEST_GITLAB_URL, SREGISTRY_TEST_GITLAB_TOKEN and
// SREGISTRY_TEST_GITLAB_PROJECT are set (optional: SREGISTRY_TEST_GITLAB_JOB_ID,
// SREGISTRY_TEST_GITLAB_SHA256, SREGISTRY_TEST_GITLAB_ARTIFACT,
// SREGISTRY_TEST_GITLAB_FOLDER).
func TestContractRealGitLab(t *testing.T) {
	base, token, project := os.Getenv("SREGISTRY_TEST_GITLAB_URL"), os.Getenv("SREGISTRY_TEST_GITLAB_TOKEN"), os.Getenv("SREGISTRY_TEST_GITLAB_PROJECT")
	if base == "" || token == "" || project == "" {
		t.Skip("set SREGISTRY_TEST_GITLAB_URL, SREGISTRY_TEST_GITLAB_TOKEN and SREGISTRY_TEST_GITLAB_PROJECT to run against a real GitLab")
	}
	settings := map[string]string{SettingBase: base, SettingToken: token, SettingFolder: os.Getenv("SREGISTRY_TEST_GITLAB_FOLDER")}
	b, err := New(backend.Config{Setting: func(n string) string { return settings[n] }, Debugf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	fx := backendtest.Fixture{Project: project, SHA256: os.Getenv("SREGISTRY_TEST_GITLAB_SHA256"), Artifact: os.Getenv("SREGISTRY_TEST_GITLAB_ARTIFACT")}
	if v := os.Getenv("SREGISTRY_TEST_GITLAB_JOB_ID"); v != "" {
		if fx.JobID, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("SREGISTRY_TEST_GITLAB_JOB_ID: %v", err)
		}
	}
	backendtest.RunContract(t, b, fx)
}

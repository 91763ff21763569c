package gitlabemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRunStandalone(t *testing.T) {
	sif := t.TempDir() + "/img.sif"
	if err := os.WriteFile(sif, []byte("SIF-CONTENT"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RunStandalone(ctx, []string{"--project", "g/s/p", "--private", "--token", "T0K",
			"--artifact", "build/Singularity.sif=" + sif, "--artifact", "build/big.bin=size:1000", "--jobs", "30", "--dir", t.TempDir()},
			pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read info line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	info := decodeJSON[StandaloneInfo](t, []byte(line))
	if info.Token != "T0K" || len(info.Jobs) != 31 || info.Projects[0] != "g/s/p" || !strings.HasPrefix(info.Storage, "http://127.0.0.1:") {
		t.Fatalf("info %+v", info)
	}
	build := info.Jobs[len(info.Jobs)-1]
	u := fmt.Sprintf("%s/api/v4/projects/g%%2Fs%%2Fp/jobs/%d/artifacts/build/Singularity.sif", info.Base, build)
	if r := get(t, u); r.status != 404 {
		t.Errorf("private anonymous: %d", r.status)
	}
	if r := get(t, u, "PRIVATE-TOKEN", "T0K"); r.status != 200 || string(r.body) != "SIF-CONTENT" {
		t.Errorf("artifact: %d %q", r.status, r.body)
	}
	r := get(t, info.Base+"/api/v4/projects/g%2Fs%2Fp/jobs?per_page=100", "PRIVATE-TOKEN", "T0K")
	var jobs []jobLite
	_ = json.Unmarshal(r.body, &jobs)
	if len(jobs) != 31 || jobs[0].ID != build {
		t.Errorf("%d jobs, first %v", len(jobs), jobs)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunStandalone: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunStandalone did not stop")
	}
}

func TestRunStandaloneConfigAndErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"projects":[{"path":"a/b","visibility":"private","jobs":[{"name":"build","artifacts":[{"path":"x.txt","data":"hi","method":"deflate"}]},{"name":"old","expired":true,"artifacts":[{"path":"y","size":5}]}]}],
	"tokens":[{"token":"jt","kind":"job"}]}`
	if err := os.WriteFile(dir+"/c.json", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	var c StandaloneConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	info, err := s.load(c, "tok")
	if err != nil || len(info.Jobs) != 2 || info.Projects[0] != "a/b" {
		t.Fatalf("load: %+v %v", info, err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad flag", []string{"--nope"}, "flag provided but not defined"},
		{"bad artifact", []string{"--artifact", "noequals"}, "want PATH=FILE"},
		{"bad size", []string{"--artifact", "a=size:x"}, "bad size"},
		{"missing file", []string{"--artifact", "a=" + dir + "/missing"}, "no such file"},
		{"missing config", []string{"--config", dir + "/none.json"}, "read config"},
		{"bad listen", []string{"--listen", "256.0.0.1:0"}, "listener"},
		{"stray arg", []string{"extra"}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := RunStandalone(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want containing %q", err, tc.want)
			}
		})
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as the command when re-executed.
func TestMain(m *testing.M) {
	if os.Getenv("GITLAB_EMULATOR_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runSelf(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GITLAB_EMULATOR_RUN_MAIN=1")
	return cmd
}

func TestServesUntilSIGTERM(t *testing.T) {
	cmd := runSelf(t, "--jobs", "3", "--token", "tok", "--artifact", "build/Singularity.sif=data:SIF", "--dir", t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no info line: %v", err)
	}
	var info struct {
		Base  string  `json:"base"`
		Token string  `json:"token"`
		Jobs  []int64 `json:"jobs"`
	}
	if err := json.Unmarshal(line, &info); err != nil || info.Token != "tok" || len(info.Jobs) != 4 {
		t.Fatalf("info %s: %v", line, err)
	}
	resp, err := http.Get(info.Base + "/api/v4/projects/group%2Fsub%2Fproj")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("project: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not exit on SIGTERM")
	}
}

func TestUsageErrorExitCode(t *testing.T) {
	err := runSelf(t, "--artifact", "broken").Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Errorf("exit %v, want code 2", err)
	}
}

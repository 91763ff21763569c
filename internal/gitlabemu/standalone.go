package gitlabemu

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// StandaloneConfig is the --config file of the standalone emulator.
type StandaloneConfig struct {
	Projects []ConfigProject `json:"projects"`
	Tokens   []ConfigToken   `json:"tokens"`
}

// ConfigProject is one project of a StandaloneConfig.
type ConfigProject struct {
	Path          string      `json:"path"`
	Visibility    string      `json:"visibility"` // "public" (default) or "private"
	DefaultBranch string      `json:"default_branch"`
	Jobs          []ConfigJob `json:"jobs"`
}

// ConfigJob is one job of a ConfigProject.
type ConfigJob struct {
	Name      string           `json:"name"`
	Stage     string           `json:"stage"`
	Ref       string           `json:"ref"`
	Status    string           `json:"status"`
	Expired   bool             `json:"expired"`
	Artifacts []ConfigArtifact `json:"artifacts"`
}

// ConfigArtifact is one archive entry of a ConfigJob: Data (text), File or Size.
type ConfigArtifact struct {
	Path   string `json:"path"`
	Data   string `json:"data"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	Method string `json:"method"` // "store" (default) or "deflate"
}

// ConfigToken is an extra token of a StandaloneConfig.
type ConfigToken struct {
	Token   string `json:"token"`
	Kind    string `json:"kind"` // "personal" (default) or "job"
	Expired bool   `json:"expired"`
}

// StandaloneInfo is the JSON line the standalone emulator prints on stdout.
type StandaloneInfo struct {
	Base     string   `json:"base"`
	Storage  string   `json:"storage"`
	Token    string   `json:"token"`
	Projects []string `json:"projects"`
	Jobs     []int64  `json:"jobs"`
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// RunStandalone parses args (without the program name), starts an emulator,
// prints one StandaloneInfo JSON line on stdout and serves until ctx is done.
// Flag errors are returned wrapped around flag.ErrHelp or as usage errors.
func RunStandalone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gitlab-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen       = fs.String("listen", "127.0.0.1:0", "API listen address (the GitLab host)")
		storeListen  = fs.String("storage-listen", "", "object-storage listen address (default: API host, random port)")
		project      = fs.String("project", "group/sub/proj", "full path of the project")
		private      = fs.Bool("private", false, "make the project private")
		jobName      = fs.String("job-name", "build", "name of the job holding the artifacts")
		ref          = fs.String("ref", "main", "ref of the job")
		fillers      = fs.Int("jobs", 0, "add N filler successful jobs without artifacts (pagination demos)")
		token        = fs.String("token", "", "personal access token to accept (default random)")
		treeAPI      = fs.Bool("tree-api", false, "serve GET .../artifacts/tree (GitLab 18.8+)")
		throttle     = fs.Int64("throttle", 0, "cap each storage download at BYTES per second")
		direct       = fs.Bool("disable-object-storage", false, "serve archives directly (200) instead of 302 to storage")
		perMinute    = fs.Int("jobs-per-minute", 0, "rate limit of the jobs list per token (0 = unlimited)")
		dir          = fs.String("dir", "", "directory for materialised archives (default a temp dir)")
		configPath   = fs.String("config", "", "JSON config listing projects, jobs, artifacts and tokens")
		artifactFlag multiFlag
	)
	fs.Var(&artifactFlag, "artifact", "archive entry PATH=FILE, PATH=size:BYTES or PATH=data:TEXT (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var cfg StandaloneConfig
	if *configPath != "" {
		b, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("parse config %s: %w", *configPath, err)
		}
	}
	if *configPath == "" || len(artifactFlag) > 0 || *fillers > 0 {
		vis := "public"
		if *private {
			vis = "private"
		}
		cp := ConfigProject{Path: *project, Visibility: vis, DefaultBranch: *ref}
		if len(artifactFlag) > 0 {
			cj := ConfigJob{Name: *jobName, Ref: *ref}
			for _, a := range artifactFlag {
				ca, err := parseArtifactFlag(a)
				if err != nil {
					return err
				}
				cj.Artifacts = append(cj.Artifacts, ca)
			}
			cp.Jobs = append(cp.Jobs, cj)
		}
		for i := 0; i < *fillers; i++ {
			cp.Jobs = append([]ConfigJob{{Name: fmt.Sprintf("test %d", i+1), Stage: "test", Ref: *ref}}, cp.Jobs...)
		}
		cfg.Projects = append(cfg.Projects, cp)
	}
	if *token == "" {
		*token = "glpat-" + randomHex(10)
	}

	s := New(Options{Listen: *listen, StorageListen: *storeListen, Dir: *dir, TreeAPI: *treeAPI,
		DisableObjectStorage: *direct, JobsPerMinute: *perMinute})
	if *storeListen == "" {
		s.opts.StorageListen = hostOf(*listen) + ":0"
	}
	info, err := s.load(cfg, *token)
	if err != nil {
		return err
	}
	s.SetThrottle(*throttle)
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()
	info.Base, info.Storage = s.URL(), s.StorageURL()
	line, _ := json.Marshal(info)
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// load registers the configured projects, jobs and tokens.
func (s *Server) load(cfg StandaloneConfig, token string) (StandaloneInfo, error) {
	info := StandaloneInfo{Token: token, Projects: []string{}, Jobs: []int64{}}
	s.AddToken(token, PersonalToken, false)
	for _, t := range cfg.Tokens {
		kind := t.Kind
		if kind == "" {
			kind = PersonalToken
		}
		if kind != PersonalToken && kind != JobToken {
			return info, fmt.Errorf("token kind %q: want %q or %q", kind, PersonalToken, JobToken)
		}
		s.AddToken(t.Token, kind, t.Expired)
	}
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	n := 0
	for _, cp := range cfg.Projects {
		if cp.Path == "" {
			return info, errors.New("config: project without path")
		}
		vis := Visibility(cp.Visibility)
		if vis == "" {
			vis = Public
		}
		if vis != Public && vis != Private {
			return info, fmt.Errorf("project %s: visibility %q: want public or private", cp.Path, cp.Visibility)
		}
		p := s.AddProject(Project{Path: cp.Path, Visibility: vis, DefaultBranch: cp.DefaultBranch})
		info.Projects = append(info.Projects, p.Path)
		for _, cj := range cp.Jobs {
			j := Job{Name: cj.Name, Stage: cj.Stage, Ref: cj.Ref, Status: cj.Status, Expired: cj.Expired,
				CreatedAt: base.Add(time.Duration(n) * time.Minute)}
			n++
			for _, ca := range cj.Artifacts {
				a := Artifact{Path: ca.Path, File: ca.File, Size: ca.Size}
				if ca.Data != "" {
					a.Data = []byte(ca.Data)
				}
				switch strings.ToLower(ca.Method) {
				case "", "store":
				case "deflate":
					a.Method = zip.Deflate
				default:
					return info, fmt.Errorf("artifact %s: method %q: want store or deflate", ca.Path, ca.Method)
				}
				if a.File != "" {
					if _, err := os.Stat(a.File); err != nil {
						return info, fmt.Errorf("artifact %s: %w", ca.Path, err)
					}
				}
				j.Artifacts = append(j.Artifacts, a)
			}
			info.Jobs = append(info.Jobs, s.AddJob(p.Path, j).ID)
		}
	}
	return info, nil
}

// parseArtifactFlag parses PATH=FILE, PATH=size:BYTES or PATH=data:TEXT.
func parseArtifactFlag(v string) (ConfigArtifact, error) {
	p, src, ok := strings.Cut(v, "=")
	if !ok || p == "" || src == "" {
		return ConfigArtifact{}, fmt.Errorf("--artifact %q: want PATH=FILE, PATH=size:BYTES or PATH=data:TEXT", v)
	}
	switch {
	case strings.HasPrefix(src, "size:"):
		n, err := strconv.ParseInt(strings.TrimPrefix(src, "size:"), 10, 64)
		if err != nil || n < 0 {
			return ConfigArtifact{}, fmt.Errorf("--artifact %q: bad size", v)
		}
		return ConfigArtifact{Path: p, Size: n}, nil
	case strings.HasPrefix(src, "data:"):
		return ConfigArtifact{Path: p, Data: strings.TrimPrefix(src, "data:")}, nil
	}
	return ConfigArtifact{Path: p, File: src}, nil
}

func hostOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[:i]
	}
	return addr
}

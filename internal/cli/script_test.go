package cli_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite"

	"github.com/sregistry/sregistry/internal/cli"
	"github.com/sregistry/sregistry/internal/demo"
	"github.com/sregistry/sregistry/internal/gitlabemu"
)

// TestMain lets the test binary act as the sregistry command in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sregistry": func() { os.Exit(cli.Main()) },
	})
}

type emuKey struct{}

// TestScripts runs the end-to-end stories in testdata/script against a
// fresh GitLab emulator per script, with HOME in the script's work folder.
func TestScripts(t *testing.T) {
	sifPath, err := demo.FindTestSIF(".")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err) // CI must run the stories, not skip them
		}
		t.Skip(err)
	}
	sifSum := fileSHA256(t, sifPath)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			emu := gitlabemu.New(gitlabemu.Options{Dir: filepath.Join(env.WorkDir, ".emu"), TreeAPI: true, StorageHost: "127.0.0.2"})
			if err := emu.Start(); err != nil {
				return err
			}
			env.Defer(func() { emu.Close() })
			fx, err := demo.Populate(emu, sifPath, env.WorkDir)
			if err != nil {
				return err
			}
			env.Values[emuKey{}] = emu
			home := filepath.Join(env.WorkDir, "home")
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			for k, v := range map[string]string{
				"HOME":                   home,
				"SREGISTRY_GITLAB_BASE":  emu.URL(),
				"SREGISTRY_GITLAB_TOKEN": fx.Token,
				"GL_TOKEN":               fx.Token,
				"GL_JOB_TOKEN":           fx.JobToken,
				"GL_STORAGE":             emu.StorageURL(),
				"PUBLIC_JOB":             strconv.FormatInt(fx.PublicJobID, 10),
				"LEGACY_JOB":             strconv.FormatInt(fx.LegacyJobID, 10),
				"DEV_JOB":                strconv.FormatInt(fx.DevJobID, 10),
				"MAIN_JOB":               strconv.FormatInt(fx.MainJobID, 10),
				"EXPIRED_JOB":            strconv.FormatInt(fx.ExpiredJobID, 10),
				"HTML_JOB":               strconv.FormatInt(fx.NotImageJob, 10),
				"SIF":                    sifPath,
				"SIF_SHA":                sifSum,
				"SIMG":                   fx.SimgPath,
				"SIMG_SHA":               fileSHA256(t, fx.SimgPath),
			} {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"emu-fault":    cmdEmuFault,
			"emu-no-token": cmdEmuNoToken,
			"emu-count":    cmdEmuCount,
			"emu-reset":    func(ts *testscript.TestScript, neg bool, args []string) { emuOf(ts).ResetRequests() },
			"sha256":       cmdSHA256,
			"mode":         cmdMode,
			"mklegacydb":   cmdMkLegacyDB,
			"count-files":  cmdCountFiles,
		},
	})
}

func emuOf(ts *testscript.TestScript) *gitlabemu.Server {
	return ts.Value(emuKey{}).(*gitlabemu.Server)
}

// emu-fault <api|storage> <path-prefix> <status|cut=N> [count] [retry-after]
func cmdEmuFault(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 {
		ts.Fatalf("usage: emu-fault listener prefix status|cut=N [count] [retry-after]")
	}
	f := gitlabemu.Fault{Listener: args[0], PathPrefix: args[1], Count: 1}
	if n, ok := strings.CutPrefix(args[2], "cut="); ok {
		v, err := strconv.ParseInt(n, 10, 64)
		ts.Check(err)
		f.CutAfter = v
	} else {
		v, err := strconv.Atoi(args[2])
		ts.Check(err)
		f.Status = v
	}
	if len(args) > 3 {
		v, err := strconv.Atoi(args[3])
		ts.Check(err)
		f.Count = v
	}
	if len(args) > 4 {
		v, err := strconv.Atoi(args[4])
		ts.Check(err)
		f.RetryAfter = v
	}
	emuOf(ts).InjectFault(f)
}

// emu-no-token: no object-storage request carried a credential or a Referer,
// and at least one storage request happened.
func cmdEmuNoToken(ts *testscript.TestScript, neg bool, args []string) {
	n := 0
	for _, r := range emuOf(ts).Requests() {
		if r.Listener != "storage" {
			continue
		}
		n++
		for _, h := range []string{"Private-Token", "Job-Token", "Authorization", "Cookie", "Referer"} {
			if v := r.Header.Get(h); v != "" {
				ts.Fatalf("storage request %s %s carried %s", r.Method, strings.SplitN(r.URL, "?", 2)[0], h)
			}
		}
		if strings.Contains(r.URL, "private_token") || strings.Contains(r.URL, "job_token") {
			ts.Fatalf("storage request URL carried a token parameter")
		}
	}
	if n == 0 {
		ts.Fatalf("no request reached the object-storage host")
	}
}

// emu-count <listener> <substring> <op> <n>: count requests whose URL contains substring.
func cmdEmuCount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 {
		ts.Fatalf("usage: emu-count listener substring op n")
	}
	want, err := strconv.Atoi(args[3])
	ts.Check(err)
	got := 0
	for _, r := range emuOf(ts).Requests() {
		if (args[0] == "any" || r.Listener == args[0]) && strings.Contains(r.URL, args[1]) {
			got++
		}
	}
	ok := map[string]bool{"==": got == want, ">=": got >= want, "<=": got <= want, ">": got > want}[args[2]]
	if !ok {
		ts.Fatalf("%d %s requests matching %q, want %s %d", got, args[0], args[1], args[2], want)
	}
}

// sha256 <file> <hex>
func cmdSHA256(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sha256 file hex")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	ts.Check(err)
	got := hex.EncodeToString(h.Sum(nil))
	if (got == args[1]) == neg {
		ts.Fatalf("sha256(%s) = %s, want %s%s", args[0], got, map[bool]string{true: "not ", false: ""}[neg], args[1])
	}
}

// mode <file> <octal>
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if uint64(st.Mode().Perm()) != want {
		ts.Fatalf("mode of %s = %o, want %s", args[0], st.Mode().Perm(), args[1])
	}
}

// count-files <dir> <n>: regular files below dir (temp files included).
func cmdCountFiles(ts *testscript.TestScript, neg bool, args []string) {
	n := 0
	filepath.Walk(ts.MkAbs(args[0]), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n++
		}
		return nil
	})
	want, _ := strconv.Atoi(args[1])
	if n != want {
		ts.Fatalf("%d files below %s, want %d", n, args[0], want)
	}
}

// mklegacydb <db> <image-file> <sha>: a catalog exactly as sregistry-cli
// 0.2.39 (SQLAlchemy) created and filled it.
func cmdMkLegacyDB(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: mklegacydb db image sha")
	}
	dbPath := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(dbPath), 0o755))
	db, err := sql.Open("sqlite", dbPath)
	ts.Check(err)
	defer db.Close()
	img, sha := ts.MkAbs(args[1]), args[2]
	stmts := []string{
		`CREATE TABLE collection (id INTEGER NOT NULL, name VARCHAR(150), token VARCHAR(50), created_at DATETIME, PRIMARY KEY (id), UNIQUE (name))`,
		`CREATE TABLE container (id INTEGER NOT NULL, created_at DATETIME, metrics TEXT NOT NULL, name VARCHAR(250) NOT NULL, tag VARCHAR(250) NOT NULL, image VARCHAR(250), url VARCHAR(500), uri VARCHAR(500), client VARCHAR(50) NOT NULL, version VARCHAR(250), collection_id INTEGER NOT NULL, PRIMARY KEY (id), CONSTRAINT _container_uc UNIQUE (collection_id, name, tag, client, version), FOREIGN KEY(collection_id) REFERENCES collection (id))`,
		`INSERT INTO collection (id, name, token, created_at) VALUES (1, '122059246,singularityhub', '3f1c2a5e-9b7d-4c1e-8a2f-1d2e3f4a5b6c', '2026-11-24 10:00:00')`,
		fmt.Sprintf(`INSERT INTO container (id, created_at, metrics, name, tag, image, url, uri, client, version, collection_id) VALUES (1, '2026-11-24 10:00:01', '{"collection": "122059246,singularityhub", "image": "gitlab-ci", "original": "122059246,singularityhub/gitlab-ci", "registry": null, "storage": "122059246,singularityhub/gitlab-ci:latest.sif", "tag": "latest", "type": "container", "uri": "122059246,singularityhub/gitlab-ci:latest", "url": "122059246,singularityhub/gitlab-ci", "version": null}', 'gitlab-ci', 'latest', '%s', 'https://gitlab.com//singularityhub/gitlab-ci/-/jobs/122059246/artifacts/raw/build/Singularity.simg/?inline=false', '122059246,singularityhub/gitlab-ci:latest@%s', 'gitlab', '%s', 1)`, img, sha, sha),
		`INSERT INTO container (id, created_at, metrics, name, tag, image, url, uri, client, version, collection_id) VALUES (2, '2026-11-24 11:30:00.123456', '{"type": "container"}', 'gitlab-ci', 'latest', '/nonexistent/old.sif', NULL, '122059246,singularityhub/gitlab-ci:latest@0000', 'gitlab', '0000', 1)`,
	}
	for _, s := range stmts {
		_, err := db.Exec(s)
		ts.Check(err)
	}
}

func fileSHA256(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

package transfer

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClientRedirectStripsCredentials(t *testing.T) {
	tests := []struct {
		name   string
		header string
		value  string
	}{
		{"private token", "PRIVATE-TOKEN", testToken},
		{"job token", "JOB-TOKEN", "job-SECRET"},
		{"bearer", "Authorization", "Bearer " + testToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var second reqLog
			target := listenOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				second.add(r)
				_, _ = io.WriteString(w, "ok")
			}))
			var first reqLog
			origin := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				first.add(r)
				http.Redirect(w, r, target.URL+"/obj?X-Amz-Signature=abc", http.StatusFound)
			}))
			c := NewClient(ClientOptions{
				AuthHost: strings.TrimPrefix(origin.URL, "http://"), AuthScheme: "http",
				AuthHeader: tc.header, AuthValue: tc.value, UserAgent: "sregistry-test",
				SensitiveHeaders: []string{"X-Custom-Secret"},
			})
			req, _ := http.NewRequest(http.MethodGet, origin.URL+"/artifacts?private_token=Q", nil)
			req.Header.Set("Range", "bytes=5-")
			req.Header.Set("Cookie", "_gitlab_session=S")
			req.Header.Set("X-Custom-Secret", "S")
			req.Header.Set("JOB-TOKEN", "J") // as if a caller had put it there
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()

			if got := first.reqs[0].Header.Get(tc.header); got != tc.value && tc.header != "JOB-TOKEN" {
				t.Errorf("origin got %s=%q, want the credential", tc.header, got)
			}
			if len(second.reqs) != 1 {
				t.Fatalf("target saw %d requests", len(second.reqs))
			}
			got := second.reqs[0]
			second.assertNoSecrets(t)
			if v := got.Header.Get("X-Custom-Secret"); v != "" {
				t.Errorf("target got X-Custom-Secret %q", v)
			}
			if v := got.Header.Get("Range"); v != "bytes=5-" {
				t.Errorf("Range on target = %q, want bytes=5-", v)
			}
			if v := got.Header.Get("User-Agent"); v != "sregistry-test" {
				t.Errorf("User-Agent on target = %q", v)
			}
		})
	}
}

func TestClientSameHostRedirectKeepsCredential(t *testing.T) {
	var log reqLog
	var srv *httptest.Server
	srv = listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	c := NewClient(ClientOptions{AuthHost: strings.TrimPrefix(srv.URL, "http://"), AuthScheme: "http", AuthHeader: "PRIVATE-TOKEN", AuthValue: testToken})
	resp, err := c.Get(srv.URL + "/a?x=1")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for _, r := range log.reqs {
		if r.Header.Get("Private-Token") != testToken {
			t.Errorf("%s lacks the token", r.URL.Path)
		}
		if r.Header.Get("Referer") != "" {
			t.Errorf("%s got Referer %q", r.URL.Path, r.Header.Get("Referer"))
		}
	}
}

func TestClientRefusesHTTPSDowngrade(t *testing.T) {
	var plainHits reqLog
	plain := listenOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.add(r) }))
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/x", http.StatusFound)
	}))
	defer tlsSrv.Close()
	c := NewClient(ClientOptions{InsecureSkipVerify: true})
	_, err := c.Get(tlsSrv.URL)
	if !errors.Is(err, ErrRedirectDowngrade) {
		t.Fatalf("err = %v, want ErrRedirectDowngrade", err)
	}
	if !IsPermanent(err) {
		t.Error("downgrade should be permanent")
	}
	if plainHits.count() != 0 {
		t.Error("plain server was contacted")
	}

	// Without InsecureSkipVerify the self-signed certificate is a permanent error.
	_, err = NewClient(ClientOptions{}).Get(tlsSrv.URL)
	if err == nil || !IsPermanent(err) {
		t.Errorf("untrusted certificate: err = %v, permanent = %v", err, IsPermanent(err))
	}
}

func TestClientMaxRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	}))
	_, err := NewClient(ClientOptions{MaxRedirects: 3}).Get(srv.URL)
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("err = %v", err)
	}
}

func TestClientIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		select { // stall
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	c := NewClient(ClientOptions{IdleTimeout: 300 * time.Millisecond})
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	if err == nil {
		t.Fatal("read of a stalled body succeeded")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stall detected after %s", el)
	}
	if IsPermanent(err) {
		t.Errorf("a stall should be retryable: %v", err)
	}
}

func TestCanonicalHost(t *testing.T) {
	tests := []struct{ scheme, host, want string }{
		{"https", "GitLab.example.com:443", "gitlab.example.com"},
		{"https", "gitlab.example.com", "gitlab.example.com"},
		{"http", "gitlab.example.com:80", "gitlab.example.com"},
		{"https", "gitlab.example.com:8443", "gitlab.example.com:8443"},
		{"http", "[::1]:80", "[::1]"},
	}
	for _, tc := range tests {
		if got := canonicalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("canonicalHost(%q, %q) = %q, want %q", tc.scheme, tc.host, got, tc.want)
		}
	}
}

func TestAuthNotSentOverOtherScheme(t *testing.T) {
	var log reqLog
	srv := listenOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { log.add(r) }))
	// The credential is for https only; a plain http request to the same host must not carry it.
	c := NewClient(ClientOptions{AuthHost: strings.TrimPrefix(srv.URL, "http://"), AuthScheme: "https", AuthHeader: "PRIVATE-TOKEN", AuthValue: testToken})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if v := log.reqs[0].Header.Get("Private-Token"); v != "" {
		t.Errorf("token sent over http: %q", v)
	}
}

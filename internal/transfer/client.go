package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// Defaults applied by NewClient for zero ClientOptions fields.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxRedirects   = 10
)

// credentialHeaders are never sent to a host other than the one the request
// started on. Go itself only strips Authorization and Cookie (and only when the
// new host is not a subdomain); GitLab's PRIVATE-TOKEN/JOB-TOKEN would leak.
var credentialHeaders = []string{
	"Private-Token", "Job-Token", "Deploy-Token", "Authorization",
	"Proxy-Authorization", "Cookie", "Cookie2",
}

// ErrRedirectDowngrade is returned (wrapped) when a redirect goes from https to http.
var ErrRedirectDowngrade = errors.New("refusing redirect from https to http")

// ErrTooManyRedirects is returned (wrapped) when MaxRedirects hops were followed.
var ErrTooManyRedirects = errors.New("too many redirects")

// NewClient returns an HTTP client that adds the credential only to requests
// for AuthHost, strips credential headers, cookies and Referer on cross-host
// redirects, refuses https->http redirects, and enforces the timeouts.
func NewClient(o ClientOptions) *http.Client {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}

	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = http.ProxyFromEnvironment
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	idle := o.IdleTimeout
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, timeout: idle}, nil
	}
	base.TLSHandshakeTimeout = o.ConnectTimeout
	base.ResponseHeaderTimeout = o.IdleTimeout
	base.TLSClientConfig = &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // user opt-in (SREGISTRY_HTTPS_NOVERIFY)
	// HTTP/1.1 only: Go's HTTP/2 transport would multiplex the parallel
	// ranged requests to one object-storage host over a single TCP
	// connection, and per-connection limits (the reason for parallel ranges)
	// would then apply to all of them together.
	base.ForceAttemptHTTP2 = false
	base.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}

	sensitive := make([]string, 0, len(credentialHeaders)+len(o.SensitiveHeaders)+1)
	sensitive = append(sensitive, credentialHeaders...)
	sensitive = append(sensitive, o.SensitiveHeaders...)
	if o.AuthHeader != "" {
		sensitive = append(sensitive, o.AuthHeader)
	}

	rt := &authTransport{
		base:      base,
		host:      canonicalHost(o.AuthScheme, o.AuthHost),
		scheme:    strings.ToLower(o.AuthScheme),
		header:    o.AuthHeader,
		value:     o.AuthValue,
		userAgent: o.UserAgent,
	}
	maxHops := o.MaxRedirects
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return checkRedirect(req, via, maxHops, sensitive)
		},
	}
}

// checkRedirect is the redirect policy of NewClient: Go copies every header of
// the first request to each hop, so credentials are deleted whenever the hop
// leaves the original host, and Referer (which carries the previous URL with
// its query, e.g. a signed URL or token) is always dropped.
func checkRedirect(req *http.Request, via []*http.Request, maxHops int, sensitive []string) error {
	if len(via) >= maxHops {
		return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, len(via))
	}
	prev := via[len(via)-1]
	if strings.EqualFold(prev.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
		return fmt.Errorf("%w: %s -> %s", ErrRedirectDowngrade, redact(prev.URL.String()), redact(req.URL.String()))
	}
	req.Header.Del("Referer")
	first := via[0].URL
	if canonicalHost(first.Scheme, first.Host) != canonicalHost(req.URL.Scheme, req.URL.Host) ||
		!strings.EqualFold(first.Scheme, req.URL.Scheme) {
		for _, h := range sensitive {
			req.Header.Del(h)
			delete(req.Header, h) // non-canonical spellings set directly in the map
		}
	}
	return nil
}

// authTransport adds the credential and User-Agent per request: it is invoked
// again for each redirect hop and only the configured scheme+host gets the credential.
type authTransport struct {
	base      http.RoundTripper
	host      string
	scheme    string
	header    string
	value     string
	userAgent string
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	addAuth := t.header != "" && t.value != "" && t.host != "" &&
		strings.ToLower(req.URL.Scheme) == t.scheme &&
		canonicalHost(req.URL.Scheme, req.URL.Host) == t.host
	addUA := t.userAgent != "" && req.Header.Get("User-Agent") == ""
	if addAuth || addUA {
		req = req.Clone(req.Context()) // a RoundTripper must not modify its request
		if addAuth {
			req.Header.Set(textproto.CanonicalMIMEHeaderKey(t.header), t.value)
		}
		if addUA {
			req.Header.Set("User-Agent", t.userAgent)
		}
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (t *authTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// canonicalHost lowercases host and drops the scheme's default port so that
// "GitLab.example.com:443" and "gitlab.example.com" compare equal for https.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	switch {
	case port == "443" && strings.EqualFold(scheme, "https"),
		port == "80" && strings.EqualFold(scheme, "http"):
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// idleConn fails a read that waits longer than timeout for a byte, so a
// stalled connection errors out instead of hanging a multi-GB pull forever.
type idleConn struct {
	net.Conn
	timeout time.Duration
	last    time.Time // when the deadline was last pushed; only the reading goroutine touches it
}

func (c *idleConn) Read(p []byte) (int, error) {
	// Pushing the deadline costs a timer update; doing it at most every
	// timeout/16 keeps the idle limit within ~6% and the hot path cheap.
	if now := time.Now(); now.Sub(c.last) > c.timeout/16 {
		c.last = now
		if err := c.Conn.SetReadDeadline(now.Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrRangeIgnored means a server answered a Range request with the whole
// object (200), so the bytes cannot be placed at the asked offset.
var ErrRangeIgnored = errors.New("server ignored Range")

// ErrNoRange is returned by ReadAt when the server does not support byte ranges.
var ErrNoRange = errors.New("server does not support byte ranges")

// ErrSizeMismatch is returned (wrapped) when the fetched size differs from the expected one.
var ErrSizeMismatch = errors.New("size mismatch")

// errorf wraps an error that must not be retried (bad answer shape, local I/O...).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// Error formats e as "GitLab answered 404 Not Found for https://host/path: 404 Project Not Found".
// The URL never includes its query (signed URLs and tokens are credentials).
func (e *HTTPError) Error() string {
	who := "GitLab"
	if e.storage {
		who = "object storage"
	}
	text := http.StatusText(e.Status)
	if text == "" {
		text = "status"
	}
	msg := fmt.Sprintf("%s answered %d %s for %s", who, e.Status, text, e.URL)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// IsPermanent reports whether err should not be retried: HTTP 4xx answers
// other than 408 and 429, TLS verification failures, refused redirects,
// context cancellation, and answers of the wrong shape.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusRequestTimeout, he.Status == http.StatusTooManyRequests:
			return false
		case he.Status >= 500:
			return false
		default:
			return true
		}
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	if errors.Is(err, ErrRedirectDowngrade) || errors.Is(err, ErrTooManyRedirects) {
		return true
	}
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		hn  x509.HostnameError
		cve *tls.CertificateVerificationError
	)
	if errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &cve) {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "unsupported protocol scheme") {
		return true
	}
	return false
}

// StatusOf returns the HTTP status carried by err, or 0 if err is not an *HTTPError.
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// maxErrorBody caps how much of an error body is read.
const maxErrorBody = 64 << 10

// newHTTPError reads (a bounded part of) resp's body, closes it and builds the error.
func newHTTPError(resp *http.Response, storage bool, now time.Time) *HTTPError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	e := &HTTPError{
		Status:  resp.StatusCode,
		URL:     redact(resp.Request.URL.String()),
		Message: errorMessage(resp.Header.Get("Content-Type"), body),
		storage: storage,
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.retryAfter = retryAfter(resp.Header, now)
	}
	return e
}

// maxRetryAfter caps how long a server may make us wait.
const maxRetryAfter = 5 * time.Minute

// retryAfter parses Retry-After (seconds or HTTP date), falling back to
// GitLab's RateLimit-Reset (Unix time); 0 means not given.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Duration(min(max(secs, 0), int64(maxRetryAfter/time.Second))) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if v := strings.TrimSpace(h.Get("RateLimit-Reset")); v != "" {
		if unix, err := strconv.ParseInt(v, 10, 64); err == nil {
			d = time.Unix(unix, 0).Sub(now)
		}
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// errorMessage extracts GitLab's message from an error body: JSON "message"
// (a string, an object with "error", or field -> messages), "error" and
// "error_description"; otherwise a short excerpt of the text without HTML.
func errorMessage(contentType string, body []byte) string {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		return ""
	}
	if strings.HasPrefix(trimmed, "{") {
		var v map[string]json.RawMessage
		if json.Unmarshal([]byte(trimmed), &v) == nil {
			if m := jsonMessage(v["message"]); m != "" {
				return excerpt(m)
			}
			e, d := jsonString(v["error"]), jsonString(v["error_description"])
			switch {
			case e != "" && d != "":
				return excerpt(e + ": " + d)
			case e != "":
				return excerpt(e)
			case d != "":
				return excerpt(d)
			}
		}
	}
	if strings.Contains(contentType, "html") || strings.HasPrefix(trimmed, "<") {
		if m := titleRE.FindStringSubmatch(trimmed); m != nil {
			if t := strings.TrimSpace(m[1]); t != "" {
				return excerpt(t)
			}
		}
		trimmed = scriptRE.ReplaceAllString(trimmed, " ")
		trimmed = tagRE.ReplaceAllString(trimmed, " ")
	}
	return excerpt(trimmed)
}

var (
	titleRE  = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	scriptRE = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`)
	tagRE    = regexp.MustCompile(`(?s)<[^>]*>`)
)

func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// jsonMessage renders GitLab's "message": a string, {"error": "..."}, or a
// validation map {"field": ["is invalid"]}.
func jsonMessage(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if s := jsonString(raw); s != "" {
		return s
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	if s := jsonString(obj["error"]); s != "" {
		return s
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		var list []string
		if json.Unmarshal(obj[k], &list) == nil && len(list) > 0 {
			parts = append(parts, k+" "+strings.Join(list, ", "))
		} else if s := jsonString(obj[k]); s != "" {
			parts = append(parts, k+" "+s)
		}
	}
	return strings.Join(parts, "; ")
}

// excerpt collapses whitespace and cuts s to a short single line.
func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const maxLen = 200
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// redact returns u without query, fragment and userinfo, for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	return u.String()
}

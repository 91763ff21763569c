package gitlabemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	amzDateFormat = "20060102T150405Z"
	bucketPrefix  = "/gitlab-artifacts/"
)

// objectKey returns the storage object key of a job's archive, assigning a
// random one on first use (GitLab's keys are opaque hashes too).
func (s *Server) objectKey(jobID int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.jobKeys[jobID]; ok {
		return k
	}
	k := randomHex(16)
	s.jobKeys[jobID] = k
	s.objectKeys[k] = jobID
	return k
}

// signedURL returns a pre-signed storage URL for the job's archive, valid
// for SignedURLTTL from now, shaped like an AWS SigV4 query-signed URL.
func (s *Server) signedURL(jobID int64) string {
	p := bucketPrefix + s.objectKey(jobID) + "/artifacts.zip"
	date := s.now().UTC().Format(amzDateFormat)
	expires := strconv.Itoa(int(s.opts.SignedURLTTL / time.Second))
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "EMULATOR/"+date[:8]+"/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", expires)
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Signature", s.sign(p, date, expires))
	return s.stURL + p + "?" + q.Encode()
}

func (s *Server) sign(p, date, expires string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(p + "\n" + date + "\n" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

// serveStorage is the object-storage listener: it checks the signature the
// way S3 does (one auth mechanism only, signature, expiry), then serves the
// zip with full Range support.
func (s *Server) serveStorage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "AmazonS3")
	w.Header().Set("X-Amz-Request-Id", strings.ToUpper(randomHex(8)))
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeS3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", "")
		return
	}
	q := r.URL.Query()
	hasQuerySig := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature")
	if hasQuerySig && r.Header.Get("Authorization") != "" {
		writeS3Error(w, http.StatusBadRequest, "InvalidArgument",
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified", "")
		return
	}
	if !hasQuerySig {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied", "")
		return
	}
	p := r.URL.EscapedPath()
	date, expires := q.Get("X-Amz-Date"), q.Get("X-Amz-Expires")
	want := s.sign(p, date, expires)
	if !hmac.Equal([]byte(want), []byte(q.Get("X-Amz-Signature"))) {
		writeS3Error(w, http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.", "")
		return
	}
	t, err1 := time.Parse(amzDateFormat, date)
	secs, err2 := strconv.Atoi(expires)
	if err1 != nil || err2 != nil {
		writeS3Error(w, http.StatusForbidden, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed.", "")
		return
	}
	now := s.now().UTC()
	if deadline := t.Add(time.Duration(secs) * time.Second); now.After(deadline) {
		extra := "<X-Amz-Expires>" + expires + "</X-Amz-Expires><Expires>" + deadline.Format("2006-01-02T15:04:05Z") +
			"</Expires><ServerTime>" + now.Format("2006-01-02T15:04:05Z") + "</ServerTime>"
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired", extra)
		return
	}
	key, ok := strings.CutPrefix(p, bucketPrefix)
	key, ok2 := strings.CutSuffix(key, "/artifacts.zip")
	s.mu.Lock()
	id, known := s.objectKeys[key]
	j := s.jobs[id]
	s.mu.Unlock()
	if !ok || !ok2 || !known || j == nil || !hasArchive(&j.Job) {
		writeS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", "<Key>"+xmlEscape(strings.TrimPrefix(p, bucketPrefix))+"</Key>")
		return
	}
	a, err := s.archiveFor(j)
	if err != nil {
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.", "")
		return
	}
	f, err := os.Open(a.path)
	if err != nil {
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.", "")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("ETag", a.etag)
	var out http.ResponseWriter = w
	if rate := s.throttle.Load(); rate > 0 {
		out = newThrottleWriter(w, rate)
	}
	http.ServeContent(out, r, "", a.modTime, f)
}

// writeS3Error writes an S3-style XML error document.
func writeS3Error(w http.ResponseWriter, status int, code, msg, extra string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Range")
	h.Del("ETag")
	h.Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		"<Error><Code>" + code + "</Code><Message>" + xmlEscape(msg) + "</Message>" + extra +
		"<RequestId>" + h.Get("X-Amz-Request-Id") + "</RequestId><HostId>gitlabemu</HostId></Error>"))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ActiveKey is the top-level key of the secrets file that names the active backend.
const ActiveKey = "SREGISTRY_CLIENT"

// Secrets is the sregistry-cli secrets file: a JSON object whose keys are
// backend names mapping to objects of settings, plus the top-level string
// ActiveKey. Key order is preserved so a user's file is rewritten faithfully,
// and the file is written only when something changed, atomically, mode 0600.
type Secrets struct {
	path  string
	top   *object
	dirty bool
}

// object is a JSON object that remembers key order.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

func newObject() *object { return &object{vals: map[string]json.RawMessage{}} }

func (o *object) get(k string) (json.RawMessage, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) set(k string, v json.RawMessage) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) bool {
	if _, ok := o.vals[k]; !ok {
		return false
	}
	delete(o.vals, k)
	for i, kk := range o.keys {
		if kk == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
	return true
}

func (o *object) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return errors.New("expected a JSON object")
	}
	o.vals = map[string]json.RawMessage{}
	o.keys = nil
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		o.set(kt.(string), raw)
	}
	_, err = dec.Token()
	return err
}

// marshal writes the object with 4-space indentation like sregistry-cli.
func (o *object) marshal(buf *bytes.Buffer, indent string) error {
	if len(o.keys) == 0 {
		buf.WriteString("{}")
		return nil
	}
	buf.WriteString("{\n")
	for i, k := range o.keys {
		kb, _ := json.Marshal(k)
		buf.WriteString(indent + "    ")
		buf.Write(kb)
		buf.WriteString(": ")
		v := o.vals[k]
		if isObject(v) {
			var sub object
			if err := json.Unmarshal(v, &sub); err != nil {
				return err
			}
			if err := sub.marshal(buf, indent+"    "); err != nil {
				return err
			}
		} else {
			var tmp bytes.Buffer
			if err := json.Indent(&tmp, v, indent+"    ", "    "); err != nil {
				return err
			}
			buf.Write(tmp.Bytes())
		}
		if i < len(o.keys)-1 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
	}
	buf.WriteString(indent + "}")
	return nil
}

func isObject(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) > 0 && t[0] == '{'
}

// LoadSecrets reads the secrets file at path. A missing file is an empty set
// of secrets (nothing is written until something changes).
func LoadSecrets(path string) (*Secrets, error) {
	s := &Secrets{path: path, top: newObject()}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, s.top); err != nil {
		return nil, fmt.Errorf("secrets file %s is not a JSON object (%v): fix or remove it", path, err)
	}
	return s, nil
}

// Path is the file's path.
func (s *Secrets) Path() string { return s.path }

// Active returns the activated backend ("" when none).
func (s *Secrets) Active() string {
	v, ok := s.top.get(ActiveKey)
	if !ok {
		return ""
	}
	var str string
	if json.Unmarshal(v, &str) != nil {
		return ""
	}
	return str
}

// SetActive activates a backend.
func (s *Secrets) SetActive(name string) {
	if s.Active() == name {
		if _, ok := s.top.get(ActiveKey); ok {
			return
		}
	}
	b, _ := json.Marshal(name)
	s.top.set(ActiveKey, b)
	s.dirty = true
}

// ClearActive deactivates; it reports whether a backend was active.
func (s *Secrets) ClearActive() bool {
	if s.top.del(ActiveKey) {
		s.dirty = true
		return true
	}
	return false
}

// Backends lists the backend names in file order (ActiveKey excluded).
func (s *Secrets) Backends() []string {
	var out []string
	for _, k := range s.top.keys {
		if k != ActiveKey && isObject(s.top.vals[k]) {
			out = append(out, k)
		}
	}
	return out
}

// HasBackend reports whether the backend has an object in the file.
func (s *Secrets) HasBackend(name string) bool {
	v, ok := s.top.get(name)
	return ok && name != ActiveKey && isObject(v)
}

func (s *Secrets) backend(name string) *object {
	v, ok := s.top.get(name)
	if !ok || !isObject(v) {
		return nil
	}
	var o object
	if json.Unmarshal(v, &o) != nil {
		return nil
	}
	return &o
}

// BackendKeys lists the setting names of a backend in file order.
func (s *Secrets) BackendKeys(name string) []string {
	if o := s.backend(name); o != nil {
		return append([]string(nil), o.keys...)
	}
	return nil
}

// Get returns a backend setting as a string (numbers and booleans are
// rendered as JSON text).
func (s *Secrets) Get(backend, key string) (string, bool) {
	o := s.backend(backend)
	if o == nil {
		return "", false
	}
	v, ok := o.get(key)
	if !ok {
		return "", false
	}
	var str string
	if json.Unmarshal(v, &str) == nil {
		return str, true
	}
	return strings.TrimSpace(string(v)), true
}

// Set stores a backend setting, creating the backend object when missing.
func (s *Secrets) Set(backend, key, value string) {
	if old, ok := s.Get(backend, key); ok && old == value {
		return
	}
	o := s.backend(backend)
	if o == nil {
		o = newObject()
	}
	b, _ := json.Marshal(value)
	o.set(key, b)
	s.putBackend(backend, o)
}

// Unset removes a backend setting; it reports whether it existed.
func (s *Secrets) Unset(backend, key string) bool {
	o := s.backend(backend)
	if o == nil || !o.del(key) {
		return false
	}
	s.putBackend(backend, o)
	return true
}

// DeleteBackend removes a backend (and the active key if it named it).
func (s *Secrets) DeleteBackend(name string) bool {
	if !s.HasBackend(name) {
		return false
	}
	s.top.del(name)
	if s.Active() == name {
		s.top.del(ActiveKey)
	}
	s.dirty = true
	return true
}

func (s *Secrets) putBackend(name string, o *object) {
	var buf bytes.Buffer
	_ = o.marshal(&buf, "")
	s.top.set(name, json.RawMessage(buf.Bytes()))
	s.dirty = true
}

// BackendJSON renders one backend's object (4-space indent, sorted keys, as
// `backend ls <name>` printed). Values of keys that look like secrets are
// redacted unless reveal is true.
func (s *Secrets) BackendJSON(name string, reveal bool) (string, bool) {
	o := s.backend(name)
	if o == nil {
		return "", false
	}
	m := map[string]any{}
	for _, k := range o.keys {
		var v any
		_ = json.Unmarshal(o.vals[k], &v)
		if !reveal && IsSecretName(k) {
			v = Redact(fmt.Sprint(v))
		}
		m[k] = v
	}
	b, _ := json.MarshalIndent(m, "", "    ")
	return string(b), true
}

// Changed reports whether Save would write.
func (s *Secrets) Changed() bool { return s.dirty }

// Save writes the file if something changed: a temp file in the same
// directory, mode 0600, fsync, rename, fsync of the directory. The directory
// is created 0700 when missing.
func (s *Secrets) Save() error {
	if !s.dirty {
		return nil
	}
	var buf bytes.Buffer
	if err := s.top.marshal(&buf, ""); err != nil {
		return err
	}
	buf.WriteString("\n")
	if err := WriteFileAtomic(s.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write secrets file: %w", err)
	}
	s.dirty = false
	return nil
}

// WriteFileAtomic writes data to path through a temp file in the same
// directory (fsync + rename + directory fsync), so readers see the old or the
// new content, never a mix. The directory is created 0700 when missing.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// IsSecretName reports whether a setting name holds a credential.
func IsSecretName(k string) bool {
	u := strings.ToUpper(k)
	return strings.Contains(u, "TOKEN") || strings.Contains(u, "SECRET") || strings.Contains(u, "PASSWORD")
}

// Redact hides all but the last 4 characters of a secret (nothing for short ones).
func Redact(v string) string {
	if v == "" {
		return ""
	}
	if len(v) <= 12 {
		return "********"
	}
	return "********" + v[len(v)-4:]
}

// Exposed reports whether the file on disk holds a credential and can be read
// by other users (sregistry-cli wrote it with the umask, typically 0644).
func (s *Secrets) Exposed() (os.FileMode, bool) {
	st, err := os.Stat(s.path)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return 0, false
	}
	for _, b := range s.Backends() {
		for _, k := range s.BackendKeys(b) {
			if IsSecretName(k) {
				return st.Mode().Perm(), true
			}
		}
	}
	return 0, false
}

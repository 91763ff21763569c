package backend

import (
	"fmt"
	"sort"
	"time"
)

// Config is what a backend factory gets: settings resolved by the caller
// (environment > secrets file > built-in default) and shared options.
type Config struct {
	// Setting returns a setting such as "SREGISTRY_GITLAB_TOKEN" ("" when unset
	// and without default).
	Setting       func(name string) string
	HTTPSNoVerify bool
	Debugf        func(format string, args ...any)
	// Infof prints a user-facing message (stderr, silenced by --quiet), e.g.
	// that GitLab is rate-limiting and the request will be retried; nil = none.
	Infof func(format string, args ...any)
	Now   func() time.Time
}

// Factory builds a backend.
type Factory func(cfg Config) (Backend, error)

// Registry maps URI schemes ("gitlab") to backend factories.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a factory; registering a scheme twice is a programming error and panics.
func (r *Registry) Register(scheme string, f Factory) {
	if _, dup := r.factories[scheme]; dup {
		panic(fmt.Sprintf("backend %q registered twice", scheme))
	}
	r.factories[scheme] = f
}

// Lookup returns the factory for scheme.
func (r *Registry) Lookup(scheme string) (Factory, bool) {
	f, ok := r.factories[scheme]
	return f, ok
}

// Names lists the registered schemes, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.factories))
	for k := range r.factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

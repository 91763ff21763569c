// Package all wires every backend into one registry.
package all

import (
	"github.com/sregistry/sregistry/internal/backend"
	"github.com/sregistry/sregistry/internal/backend/gitlab"
)

// Registry returns a registry with every available backend: "gitlab".
func Registry() *backend.Registry {
	r := backend.NewRegistry()
	r.Register(gitlab.Name, gitlab.New)
	return r
}

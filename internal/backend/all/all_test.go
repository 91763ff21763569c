package all

import (
	"testing"

	"github.com/sregistry/sregistry/internal/backend"
)

func TestRegistry(t *testing.T) {
	r := Registry()
	if got := r.Names(); len(got) != 1 || got[0] != "gitlab" {
		t.Fatalf("Names() = %v", got)
	}
	f, ok := r.Lookup("gitlab")
	if !ok {
		t.Fatal("gitlab not registered")
	}
	b, err := f(backend.Config{Setting: func(string) string { return "" }})
	if err != nil || b.Name() != "gitlab" {
		t.Fatalf("factory: %v, %v", b, err)
	}
}

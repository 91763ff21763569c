package cli

import (
	"reflect"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"images", []string{"images"}, false},
		{"  get   a/b:c  ", []string{"get", "a/b:c"}, false},
		{`add "my file.sif" --name 'x y'`, []string{"add", "my file.sif", "--name", "x y"}, false},
		{`a\ b "q\"uote"`, []string{"a b", `q"uote`}, false},
		{`''`, []string{""}, false},
		{`"open`, nil, true},
		{`'open`, nil, true},
	}
	for _, tc := range tests {
		got, err := splitWords(tc.in)
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("splitWords(%q) = %q, %v; want %q (err %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestHoldsSecret(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"backend", "add", "gitlab", "token", "glpat-x"}, true},
		{[]string{"sregistry", "backend", "add", "gitlab", "SREGISTRY_GITLAB_TOKEN", "glpat-x"}, true},
		{[]string{"backend", "add", "gitlab", "token", "-"}, false},
		{[]string{"backend", "add", "gitlab", "base", "https://x"}, false},
		{[]string{"images"}, false},
	}
	for _, tc := range tests {
		if got := holdsSecret(tc.args); got != tc.want {
			t.Errorf("holdsSecret(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

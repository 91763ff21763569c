package gitlab

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePullRef(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    pullRef
		wantErr string // substring; "" = success
	}{
		{name: "job id and project", in: "122059246,singularityhub/gitlab-ci",
			want: pullRef{JobID: 122059246, Project: "singularityhub/gitlab-ci"}},
		{name: "job id project and job name", in: "122059246,singularityhub/gitlab-ci,build",
			want: pullRef{JobID: 122059246, Project: "singularityhub/gitlab-ci", JobName: "build"}},
		{name: "nested groups", in: "7,group/sub/proj",
			want: pullRef{JobID: 7, Project: "group/sub/proj"}},
		{name: "tag on collection", in: "123,group/proj:dev",
			want: pullRef{JobID: 123, Project: "group/proj", Tag: "dev"}},
		{name: "tag and job name", in: "123,group/proj:Dev,test",
			want: pullRef{JobID: 123, Project: "group/proj", Tag: "Dev", JobName: "test"}},
		{name: "surrounding slashes and spaces", in: " 5 , /group/proj/ ",
			want: pullRef{JobID: 5, Project: "group/proj"}},
		{name: "numeric project id", in: "5,42", want: pullRef{JobID: 5, Project: "42"}},
		{name: "path form", in: "group/proj", want: pullRef{Project: "group/proj"}},
		{name: "path form tag", in: "group/sub/proj:v1.2", want: pullRef{Project: "group/sub/proj", Tag: "v1.2"}},
		{name: "path form ref", in: "group/proj@main", want: pullRef{Project: "group/proj", GitRef: "main"}},
		{name: "path form tag and ref with slash", in: "group/proj:dev@feature/x",
			want: pullRef{Project: "group/proj", Tag: "dev", GitRef: "feature/x"}},

		{name: "four parts", in: "1,2,3,4", wantErr: "Malformed image string"},
		{name: "non numeric id", in: "abc,group/proj", wantErr: "Malformed image string"},
		{name: "negative id", in: "-1,group/proj", wantErr: "not a positive number"},
		{name: "zero id", in: "0,group/proj", wantErr: "not a positive number"},
		{name: "empty project", in: "12,", wantErr: "empty part"},
		{name: "empty job name", in: "12,group/proj,", wantErr: "empty part"},
		{name: "empty id", in: ",group/proj", wantErr: "empty part"},
		{name: "empty tag", in: "12,group/proj:", wantErr: "empty tag"},
		{name: "ref with job id", in: "12,group/proj@main", wantErr: "cannot be combined"},
		{name: "job name with slash", in: "12,group/proj,a/b", wantErr: "not a job name"},
		{name: "single segment", in: "singularityhub", wantErr: "<group>/<project>"},
		{name: "empty", in: "", wantErr: "Malformed image string"},
		{name: "dotdot", in: "group/../proj", wantErr: "relative segment"},
		{name: "double slash", in: "group//proj", wantErr: "empty or relative"},
		{name: "empty ref", in: "group/proj@", wantErr: "empty ref"},
		{name: "query char", in: "group/proj?x", wantErr: "contains"},
		{name: "two tags", in: "group/proj:a:b", wantErr: "not a valid tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePullRef(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("parsePullRef(%q) = %+v, want error containing %q", tc.in, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parsePullRef(%q) error %q, want it to contain %q", tc.in, err, tc.wantErr)
				}
				if !errors.Is(err, errMalformed) {
					t.Fatalf("error %q does not wrap errMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePullRef(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("parsePullRef(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestMalformedMessageKeepsOriginalWording(t *testing.T) {
	_, err := parsePullRef("1,2,3,4")
	want := "Malformed image string! Please provide: job_id,collection (or) job_id,collection,job_name"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want it to contain %q", err, want)
	}
}

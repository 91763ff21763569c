package image

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeMetadataShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want *Attributes
		err  string
	}{
		{
			name: "3.6+",
			in:   `{"data":{"attributes":{"labels":{"a":"b"},"environment":{"/e.sh":"x"},"runscript":"r","helpfile":"h","deffile":"d","startscript":"s","test":"t","apps":{"foo":{"runscript":"ar","labels":{"l":"v"}}}}},"type":"container"}`,
			want: &Attributes{Labels: map[string]string{"a": "b"}, Environment: map[string]string{"/e.sh": "x"}, Runscript: "r", Helpfile: "h", Deffile: "d", Startscript: "s", Test: "t",
				Apps: map[string]*AppAttributes{"foo": {Runscript: "ar", Labels: map[string]string{"l": "v"}}}},
		},
		{
			name: "3.5 environment and apps as strings",
			in:   `{"data":{"attributes":{"labels":{"n":1},"environment":"export A=1","apps":"foo\n"}},"type":"container"}`,
			want: &Attributes{Labels: map[string]string{"n": "1"}, Environment: map[string]string{Env90Path: "export A=1"}},
		},
		{
			name: "3.0 no data level, labels as text",
			in:   `{"attributes":{"labels":"{\n\t\"x\": \"y\"\n}","runscript":"r"},"type":"container"}`,
			want: &Attributes{Labels: map[string]string{"x": "y"}, Runscript: "r"},
		},
		{
			name: "2.x type inside data, help, nulls",
			in:   `{"data":{"attributes":{"labels":null,"deffile":"d","help":"hh","test":null,"environment":"E"},"type":"container"}}`,
			want: &Attributes{Deffile: "d", Helpfile: "hh", Environment: map[string]string{Env90Path: "E"}},
		},
		{name: "not json", in: `{`, err: "decode inspect metadata"},
		{name: "no attributes", in: `{"data":{}}`, err: `no "attributes"`},
		{name: "runscript not string", in: `{"attributes":{"runscript":5}}`, err: "runscript is not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeMetadata([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestMetricsAndRendering(t *testing.T) {
	p := needBusybox(t)
	info, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	m := info.Metrics()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Data struct {
			Attributes map[string]json.RawMessage `json:"attributes"`
		} `json:"data"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Type != "container" {
		t.Fatalf("metrics %s: %v", b, err)
	}
	var keys []string
	for k := range back.Data.Attributes {
		keys = append(keys, k)
	}
	for _, k := range []string{"deffile", "labels", "runscript", "environment", "startscript"} {
		if _, ok := back.Data.Attributes[k]; !ok {
			t.Errorf("metrics lack %q (have %v)", k, keys)
		}
	}
	for _, k := range []string{"help", "test", "helpfile", "apps"} {
		if _, ok := back.Data.Attributes[k]; ok {
			t.Errorf("metrics have %q, which busybox does not have", k)
		}
	}
	if got := (&Info{Attributes: &Attributes{Helpfile: "h"}}).Metrics(); !reflect.DeepEqual(got, map[string]any{"data": map[string]any{"attributes": map[string]any{"help": "h"}}, "type": "container"}) {
		t.Errorf("help metrics = %v", got)
	}
	if got := (*Info)(nil).Metrics(); got["type"] != "container" {
		t.Errorf("nil metrics = %v", got)
	}

	// Rendering round-trips to the byte through the 3.6+ Metadata shape, as
	// Singularity wrote it into the image (modulo its key order).
	out, err := MarshalInspectJSON(info.Attributes)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "{\n\t\"data\": {\n\t\t\"attributes\": {\n\t\t\t\"environment\": {") || !strings.HasSuffix(string(out), "\t\"type\": \"container\"\n}\n") {
		t.Errorf("rendering:\n%s", out)
	}
	if !strings.Contains(string(out), `\u0026\u0026`) {
		t.Error("rendering must HTML-escape like apptainer (&& -> \\u0026\\u0026)")
	}
	again, err := DecodeMetadata(out)
	if err != nil || !reflect.DeepEqual(again, info.Attributes) {
		t.Errorf("round trip: %v", err)
	}
	labelsOnly, _ := MarshalInspectJSON(info.Attributes.Select("labels"))
	if strings.Contains(string(labelsOnly), "runscript") || !strings.Contains(string(labelsOnly), "org.label-schema.build-arch") {
		t.Errorf("labels only:\n%s", labelsOnly)
	}
}

func TestSections(t *testing.T) {
	a := &Attributes{Labels: map[string]string{"b": "2", "a": "1"}, Runscript: "r", Helpfile: "h",
		Environment: map[string]string{"/e.sh": "x"}, Apps: map[string]*AppAttributes{"z": {}, "y": {}}}
	info := &Info{Attributes: a}
	for _, tc := range []struct {
		name string
		want any
		ok   bool
		text string
	}{
		{"labels", a.Labels, true, "a: 1\nb: 2\n"},
		{"runscript", "r", true, "r\n"},
		{"helpfile", "h", true, "h\n"},
		{"help", "h", true, "h\n"},
		{"environment", a.Environment, true, "=== /e.sh ===\nx\n\n"},
		{"apps", a.Apps, true, "y\nz\n"},
		{"deffile", "", false, ""},
		{"test", "", false, ""},
		{"bogus", nil, false, ""},
	} {
		v, ok := info.Section(tc.name)
		if ok != tc.ok || (ok && !reflect.DeepEqual(v, tc.want)) {
			t.Errorf("Section(%q) = %v, %v", tc.name, v, ok)
		}
		if txt, _ := a.SectionText(tc.name); txt != tc.text {
			t.Errorf("SectionText(%q) = %q, want %q", tc.name, txt, tc.text)
		}
	}
	if _, ok := (&Info{}).Section("labels"); ok {
		t.Error("nil attributes must have no sections")
	}
}

func TestMetadataFromFile(t *testing.T) {
	// The exact bytes Singularity 3.8.1 stored decode into the same attributes Inspect returns.
	p := needBusybox(t)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1896)
	if _, err := f.ReadAt(buf, 36864); err != nil {
		t.Fatal(err)
	}
	a, err := DecodeMetadata(buf)
	if err != nil {
		t.Fatal(err)
	}
	if a.Deffile != "BootStrap: docker\nFrom: busybox:1.33.1" || a.Labels["org.label-schema.usage.singularity.version"] != "3.8.1" {
		t.Errorf("decoded %+v", a)
	}
}

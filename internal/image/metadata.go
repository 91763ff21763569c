package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Env90Path is where `%environment` lives; older metadata shapes carry only
// this file as a plain string.
const Env90Path = "/.singularity.d/env/90-environment.sh"

// Metadata is the document `apptainer inspect --json` prints (3.6+ shape).
type Metadata struct {
	Data struct {
		Attributes Attributes `json:"attributes"`
	} `json:"data"`
	Type string `json:"type"`
}

// DecodeMetadata decodes an inspect-metadata.json descriptor or the output of
// `singularity inspect --json`, in any of the shapes Singularity wrote:
// 3.6+ ({data:{attributes}}, environment as a map), 3.5 (environment and apps
// as strings), 3.0 ({attributes} with labels as raw JSON text) and 2.x
// ({data:{attributes,type}}, "help" instead of "helpfile", nulls).
func DecodeMetadata(b []byte) (*Attributes, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("decode inspect metadata: %w", err)
	}
	raw, ok := top["attributes"]
	if data, has := top["data"]; has {
		var d map[string]json.RawMessage
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("decode inspect metadata: \"data\" is not an object: %w", err)
		}
		raw, ok = d["attributes"]
	}
	if !ok {
		return nil, errors.New("decode inspect metadata: no \"attributes\" object")
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return nil, fmt.Errorf("decode inspect metadata: \"attributes\" is not an object: %w", err)
	}
	a := &Attributes{}
	var err error
	if a.Labels, err = labelsField(attrs["labels"]); err != nil {
		return nil, err
	}
	if a.Environment, err = envField(attrs["environment"]); err != nil {
		return nil, err
	}
	for key, dst := range map[string]*string{
		"runscript": &a.Runscript, "test": &a.Test, "deffile": &a.Deffile,
		"startscript": &a.Startscript, "helpfile": &a.Helpfile, "help": &a.Helpfile,
	} {
		if *dst != "" {
			continue // "helpfile" and "help" share a field; either may be set
		}
		if *dst, err = stringField(key, attrs[key]); err != nil {
			return nil, err
		}
	}
	if rawApps, ok := attrs["apps"]; ok && len(rawApps) > 0 && rawApps[0] == '{' {
		var apps map[string]map[string]json.RawMessage
		if err := json.Unmarshal(rawApps, &apps); err != nil {
			return nil, fmt.Errorf("decode inspect metadata: apps: %w", err)
		}
		for name, app := range apps {
			aa := &AppAttributes{}
			if aa.Labels, err = labelsField(app["labels"]); err != nil {
				return nil, err
			}
			if aa.Environment, err = envField(app["environment"]); err != nil {
				return nil, err
			}
			for key, dst := range map[string]*string{
				"runscript": &aa.Runscript, "startscript": &aa.Startscript,
				"test": &aa.Test, "helpfile": &aa.Helpfile,
			} {
				if *dst, err = stringField("apps."+key, app[key]); err != nil {
					return nil, err
				}
			}
			if a.Apps == nil {
				a.Apps = map[string]*AppAttributes{}
			}
			a.Apps[name] = aa
		}
	}
	return a, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func stringField(key string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decode inspect metadata: %s is not a string: %w", key, err)
	}
	return s, nil
}

// labelsField accepts an object, or (3.0) the raw labels.json text.
func labelsField(raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if strings.TrimSpace(text) == "" {
			return nil, nil
		}
		raw = json.RawMessage(text)
	}
	m, err := decodeLabels(raw)
	if err != nil {
		return nil, fmt.Errorf("decode inspect metadata: labels: %w", err)
	}
	return m, nil
}

// decodeLabels parses labels.json, stringifying non-string values.
func decodeLabels(b []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("labels are not a JSON object: %w", err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
			continue
		}
		out[k] = string(bytes.TrimSpace(v))
	}
	return out, nil
}

// envField accepts the 3.6+ map, or the older single string (90-environment.sh).
func envField(raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if text == "" {
			return nil, nil
		}
		return map[string]string{Env90Path: text}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode inspect metadata: environment: %w", err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(bytes.TrimSpace(v))
		}
		out[k] = s
	}
	return out, nil
}

// Metrics returns the catalog metrics shape of sregistry-cli's inspect:
// {"data":{"attributes":{"deffile":..,"labels":{..},"runscript":..,"environment":..,"help":..,"test":..}},"type":"container"}.
// Keys are present only when known; "help" carries the help file text and
// environment is the path->text map.
func (i *Info) Metrics() map[string]any {
	attrs := map[string]any{}
	if i != nil && i.Attributes != nil {
		a := i.Attributes
		for k, v := range map[string]string{
			"deffile": a.Deffile, "runscript": a.Runscript, "help": a.Helpfile,
			"test": a.Test, "startscript": a.Startscript,
		} {
			if v != "" {
				attrs[k] = v
			}
		}
		if len(a.Labels) > 0 {
			attrs["labels"] = copyMap(a.Labels)
		}
		if len(a.Environment) > 0 {
			attrs["environment"] = copyMap(a.Environment)
		}
	}
	return map[string]any{"data": map[string]any{"attributes": attrs}, "type": "container"}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Section names accepted by Info.Section and Attributes.Select; they match the
// `apptainer inspect` flags --labels, --deffile, --runscript, --startscript,
// --environment, --test, --helpfile and --list-apps.
var Sections = []string{"labels", "deffile", "runscript", "startscript", "environment", "test", "helpfile", "apps"}

// Section returns one attribute section: a string for deffile, runscript,
// startscript, test and helpfile ("help" is an alias), a map[string]string for
// labels and environment, and map[string]*AppAttributes for apps. ok is false
// when the section is unknown or empty.
func (i *Info) Section(name string) (v any, ok bool) {
	if i == nil || i.Attributes == nil {
		return nil, false
	}
	return i.Attributes.Section(name)
}

// Section is Info.Section on the attributes themselves.
func (a *Attributes) Section(name string) (v any, ok bool) {
	if a == nil {
		return nil, false
	}
	str := func(s string) (any, bool) { return s, s != "" }
	switch name {
	case "labels":
		return a.Labels, len(a.Labels) > 0
	case "environment":
		return a.Environment, len(a.Environment) > 0
	case "apps":
		return a.Apps, len(a.Apps) > 0
	case "deffile":
		return str(a.Deffile)
	case "runscript":
		return str(a.Runscript)
	case "startscript":
		return str(a.Startscript)
	case "test":
		return str(a.Test)
	case "helpfile", "help":
		return str(a.Helpfile)
	}
	return nil, false
}

// Select returns a copy holding only the named sections (see Sections), like
// `apptainer inspect --json --labels --runscript`. No names copies everything.
func (a *Attributes) Select(names ...string) *Attributes {
	out := &Attributes{}
	if a == nil {
		return out
	}
	if len(names) == 0 {
		*out = *a
		return out
	}
	for _, n := range names {
		switch n {
		case "labels":
			out.Labels = a.Labels
		case "environment":
			out.Environment = a.Environment
		case "apps":
			out.Apps = a.Apps
		case "deffile":
			out.Deffile = a.Deffile
		case "runscript":
			out.Runscript = a.Runscript
		case "startscript":
			out.Startscript = a.Startscript
		case "test":
			out.Test = a.Test
		case "helpfile", "help":
			out.Helpfile = a.Helpfile
		}
	}
	return out
}

// MarshalInspectJSON renders attributes exactly as `apptainer inspect --json`
// prints them: {"data":{"attributes":{...}},"type":"container"} indented with
// tabs, HTML-escaped like encoding/json, with a trailing newline.
func MarshalInspectJSON(a *Attributes) ([]byte, error) {
	var m Metadata
	if a != nil {
		m.Data.Attributes = *a
	}
	m.Type = "container"
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("render inspect JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// SectionText renders one section as plain text, the way `apptainer inspect`
// prints it without --json: labels as sorted "key: value" lines, environment
// as "=== path ===" blocks, apps as one name a line, text sections as is.
func (a *Attributes) SectionText(name string) (string, bool) {
	v, ok := a.Section(name)
	if !ok {
		return "", false
	}
	var sb strings.Builder
	switch v := v.(type) {
	case string:
		sb.WriteString(v)
		sb.WriteByte('\n')
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if name == "environment" {
				fmt.Fprintf(&sb, "=== %s ===\n%s\n\n", k, v[k])
			} else {
				fmt.Fprintf(&sb, "%s: %s\n", k, v[k])
			}
		}
	case map[string]*AppAttributes:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sb.WriteString(k + "\n")
		}
	}
	return sb.String(), true
}

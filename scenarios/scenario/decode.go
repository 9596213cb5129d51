package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the scenario file at path. Errors name the path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}}
	}
	return Parse(path, data)
}

// Parse parses and validates a scenario. name is used in error messages
// (usually the file's path). The error, if any, is an ErrorList holding
// every problem found, each as file:line:col: message.
func Parse(name string, data []byte) (*Scenario, error) {
	d := &decoder{file: name}
	s := d.parse(data)
	if len(d.errs) > 0 {
		return nil, d.errs.sort()
	}
	return s, nil
}

// decoder walks a yaml.Node tree and collects errors instead of stopping
// at the first.
type decoder struct {
	file string
	errs ErrorList
}

func (d *decoder) errorf(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) parse(data []byte) *Scenario {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.errorf(Pos{}, "empty file: expected a scenario mapping with name, topology, workload, ...")
			return nil
		}
		d.yamlError(err, data)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(pos(&extra), "a second YAML document: expected one scenario per file")
	} else if err != io.EOF {
		d.yamlError(err, data)
	}
	if len(doc.Content) == 0 {
		d.errorf(Pos{}, "empty file: expected a scenario mapping with name, topology, workload, ...")
		return nil
	}
	root := doc.Content[0]
	if d.noAliases(root); len(d.errs) > 0 {
		return nil
	}
	s := d.scenario(root)
	d.validate(s)
	return s
}

// yamlError turns a yaml.v3 syntax error into file:line: message. An
// error yaml.v3 gives no line (a control character, bytes that are not
// UTF-8) is placed at the first such character of data.
func (d *decoder) yamlError(err error, data []byte) {
	msg := err.Error()
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "yaml: unmarshal errors:" {
			continue
		}
		if m := yamlLine.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			d.errorf(Pos{Line: n}, "YAML syntax: %s", m[2])
			continue
		}
		p, _ := JunkPos(data)
		d.errorf(p, "YAML syntax: %s", strings.TrimPrefix(line, "yaml: "))
	}
}

// noAliases rejects anchors, aliases and merge keys: they would let a
// small file expand into a huge one, and the format is small enough to
// write out.
func (d *decoder) noAliases(n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		d.errorf(pos(n), "YAML aliases (*%s) are not supported: write the value out", n.Value)
		return
	}
	if n.Anchor != "" {
		d.errorf(pos(n), "YAML anchors (&%s) are not supported: write the value out", n.Anchor)
	}
	for _, c := range n.Content {
		d.noAliases(c)
	}
}

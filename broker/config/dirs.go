package config

import (
	"errors"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dirs are data directories: YAML takes one (a string) or a list.
type Dirs []string

// First is the directory that holds the lock and every store's files
// but the mirrored journal's further copies.
func (d Dirs) First() string {
	if len(d) == 0 {
		return ""
	}
	return d[0]
}

func (d Dirs) String() string { return strings.Join(d, ", ") }

// dup returns a directory given twice, or "".
func (d Dirs) dup() string {
	seen := map[string]bool{}
	for _, p := range d {
		c := filepath.Clean(p)
		if seen[c] {
			return p
		}
		seen[c] = true
	}
	return ""
}

// UnmarshalYAML takes a string or a list of strings.
func (d *Dirs) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*d = Dirs{n.Value}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*d = l
		return nil
	}
	return errors.New("data: want a directory or a list of directories")
}

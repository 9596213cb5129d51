package config

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDataDirs(t *testing.T) {
	c, err := Parse("c.yaml", []byte("data: [/d0, /d1]\nmin-mirrors: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Data, Dirs{"/d0", "/d1"}) || c.Data.First() != "/d0" || c.MinMirrors != 2 {
		t.Fatalf("got data %v min %d", c.Data, c.MinMirrors)
	}
	if c, err = Parse("c.yaml", []byte("data: /d0\n")); err != nil || !slices.Equal(c.Data, Dirs{"/d0"}) || c.MinMirrors != 1 {
		t.Fatalf("one directory: %v %v", c.Data, err)
	}
	// Flags replace the file's list, in the order given.
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("data: [/f0, /f1, /f2]\n"), 0o644)
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", file, "--data", "/x", "--data=/y"}); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(f.ConfigFile()); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Data, Dirs{"/x", "/y"}) {
		t.Fatalf("flags: %v", c.Data)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"data: [/d0, /d0/]\n", "c.yaml:1: data: /d0/ is given twice"},
		{"data: [/d0, /d1]\nmin-mirrors: 3\n", "c.yaml:2: min-mirrors: 3 is outside 1 to 2"},
		{"data: [/d0]\nmin-mirrors: 0\n", "min-mirrors: 0 is outside"},
		{"data: [/d0, /d1]\nstore: memory\n", "several directories (a mirrored journal) need store journal"},
		{"data: []\n", "data: must name a directory"},
		{"data: {a: b}\n", "want a directory or a list"},
	} {
		if _, err := Parse("c.yaml", []byte(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.yaml, err, bad.want)
		}
	}
}

package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunIDStaysInOut: a run id that would leave Out is refused before
// anything is made.
func TestRunIDStaysInOut(t *testing.T) {
	sc := parse(t, strings.Replace(crashYAML, "%s", `{kind: command, command: [`+fakeBin+`, --listen, "{listen}"]}`, 1))
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, id := range []string{"../escape", "a/b", ".."} {
		if _, err := Run(context.Background(), sc, Options{Out: out, RunID: id}); err == nil || !strings.Contains(err.Error(), "run id") {
			t.Errorf("run id %q: %v", id, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("made %v", ents)
	}
}

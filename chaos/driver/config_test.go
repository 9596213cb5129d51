package driver

import (
	"context"
	"slices"
	"testing"
)

type exitsOnly struct{}

func (*exitsOnly) Exits() []Exit { return nil }

type wiper struct{}

func (*wiper) WipeDB(context.Context, string) error { return nil }

// TestUnmet: a need is met by its optional interface, judged from a nil
// pointer of the driver's type.
func TestUnmet(t *testing.T) {
	c := Config{Needs: []string{NeedExitStatus, NeedRestartArgs}}
	if got := c.Unmet((*exitsOnly)(nil)); !slices.Equal(got, []string{NeedRestartArgs}) {
		t.Fatalf("Unmet = %v, want [%s]", got, NeedRestartArgs)
	}
	if got := (Config{Needs: []string{NeedDatabaseWipe}}).Unmet((*exitsOnly)(nil)); !slices.Equal(got, []string{NeedDatabaseWipe}) {
		t.Fatalf("Unmet of a database wipe = %v", got)
	}
	if got := (Config{Needs: []string{NeedDatabaseWipe}}).Unmet((*wiper)(nil)); len(got) != 0 {
		t.Fatalf("Unmet of a database wipe by a DatabaseWiper = %v", got)
	}
	if got := (Config{}).Unmet((*exitsOnly)(nil)); len(got) != 0 {
		t.Fatalf("Unmet of no needs = %v", got)
	}
}

package drivers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/driver"
)

// TestOpenAuto: auto skips a driver whose probe fails and one that cannot
// run the topology (closing its partial driver), opens the next, and says
// why.
func TestOpenAuto(t *testing.T) {
	saved := registry
	defer func() { registry = saved }()
	partial := driver.NewFake()
	registry = []entry{
		{name: "x", open: func(context.Context, driver.Config) (driver.Driver, error) { t.Fatal("x opened"); return nil, nil },
			probe: func(context.Context, string) error { return errors.New("no engine") }},
		{name: "y", open: func(context.Context, driver.Config) (driver.Driver, error) {
			return partial, fmt.Errorf("a postgres server: %w", driver.ErrUnsupported)
		}},
		{name: "z", open: func(context.Context, driver.Config) (driver.Driver, error) { return driver.NewFake(), nil }},
	}
	d, name, why, err := OpenAuto(context.Background(), driver.Config{})
	if err != nil || d == nil || name != "z" {
		t.Fatalf("OpenAuto = %v, %q, %v; want z", d, name, err)
	}
	if !strings.Contains(why, "not x: no engine") || !strings.Contains(why, "not y: a postgres server") {
		t.Errorf("why = %q", why)
	}
	if partial.String() != "close" {
		t.Errorf("the partial driver of y was not closed: %q", partial.String())
	}
	if got, _, err := Choose(context.Background(), "nope", ""); err == nil {
		t.Errorf("Choose(nope) = %q, want an error", got)
	}
}

package fault

import (
	"context"
	"sync"

	"github.com/lossbench/lossbench/chaos/driver"
)

// toxic is the common part of the link toxics: install on Inject, remove
// on Recover.
type toxic struct {
	mu sync.Mutex
	id string
}

func (t *toxic) inject(ctx context.Context, d driver.Driver, name, a, b string, tx driver.Toxic) error {
	dl, err := links(d, name)
	if err != nil {
		return err
	}
	id, err := dl.AddToxic(ctx, a, b, tx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.id = id
	t.mu.Unlock()
	return nil
}

func (t *toxic) recover(ctx context.Context, d driver.Driver, name string) error {
	dl, err := links(d, name)
	if err != nil {
		return err
	}
	t.mu.Lock()
	id := t.id
	t.id = ""
	t.mu.Unlock()
	if id == "" {
		return nil
	}
	return dl.RemoveToxic(ctx, id)
}

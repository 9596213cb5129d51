package role

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestRenewSoon: a holder that asks for it renews at the next poll, not
// a Renew (here an hour) after its last renewal, and only once per ask.
func TestRenewSoon(t *testing.T) {
	tm := NewTerm(TermOptions{TTL: 2 * time.Hour, Renew: time.Hour, Margin: time.Minute, Poll: time.Millisecond})
	var renewals atomic.Int32
	if !tm.Begin(time.Now(), func(context.Context, time.Time) (bool, error) {
		renewals.Add(1)
		return false, nil
	}) {
		t.Fatal("Begin refused")
	}
	defer tm.Stop()
	count := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for renewals.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d renewals, want %d", renewals.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond) // 20 polls: nothing is due for an hour
	if n := renewals.Load(); n != 0 {
		t.Fatalf("%d renewals before RenewSoon, want 0", n)
	}
	tm.RenewSoon()
	count(1)
	tm.RenewSoon()
	count(2)
	time.Sleep(20 * time.Millisecond)
	if n := renewals.Load(); n != 2 {
		t.Fatalf("%d renewals after two RenewSoon, want 2", n)
	}
}

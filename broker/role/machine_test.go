package role

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// stuckLock is held from Acquire until the test loses it; its Release
// hangs, as on a storage that stopped answering.
type stuckLock struct {
	lost    chan struct{}
	release chan struct{} // closed by the test's cleanup
}

func (l *stuckLock) Acquire(context.Context) (int64, error) { return 1, nil }
func (l *stuckLock) Held() bool {
	select {
	case <-l.lost:
		return false
	default:
		return true
	}
}
func (l *stuckLock) Lost() <-chan struct{} { return l.lost }
func (l *stuckLock) Epoch() int64          { return 1 }
func (l *stuckLock) Release() error        { <-l.release; return nil }
func (l *stuckLock) Status() Status {
	return Status{Role: "master", Owner: "a", Epoch: 1, Reason: "cut off from the storage"}
}

// TestLostLockWithHangingReleaseExits: a master that loses its lock fails
// stop and exits 1 even when releasing the lock hangs (the storage holding
// it stopped answering).
func TestLostLockWithHangingReleaseExits(t *testing.T) {
	l := &stuckLock{lost: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(l.release) })
	var mu sync.Mutex
	var log strings.Builder
	m := New(Options{
		Listen: "127.0.0.1:0",
		Lock:   l,
		Open:   func(context.Context) (store.Store, error) { return memstore.New(), nil },
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			log.WriteString(strings.TrimSpace(format) + "\n")
		},
	})
	done := make(chan int, 1)
	go func() { done <- m.Run(make(chan os.Signal)) }()
	close(l.lost)
	select {
	case code := <-done:
		if code != 1 {
			t.Fatalf("Run = %d after losing the lock, want 1", code)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after losing the lock: the hanging release holds the exit")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(log.String(), "left behind") {
		t.Fatalf("no word of the release left behind:\n%s", log.String())
	}
}

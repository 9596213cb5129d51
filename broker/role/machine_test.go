package role

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
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

// gateLock is acquired when the test opens its gate.
type gateLock struct {
	stuckLock
	asked chan struct{} // closed when Acquire is called
	gate  chan struct{}
}

func (l *gateLock) Acquire(ctx context.Context) (int64, error) {
	close(l.asked)
	select {
	case <-l.gate:
		return 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
func (l *gateLock) Release() error { return nil }

// TestBindOnlyAsMaster: a standby does not open its STOMP listener
// (Options.Bind) before it holds the lock, and closes it on shutdown.
func TestBindOnlyAsMaster(t *testing.T) {
	l := &gateLock{stuckLock: stuckLock{lost: make(chan struct{})}, asked: make(chan struct{}), gate: make(chan struct{})}
	bound := make(chan net.Listener, 1)
	m := New(Options{
		Listen: "inherited",
		Bind: func() (net.Listener, error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err == nil {
				bound <- ln
			}
			return ln, err
		},
		Lock: l,
		Open: func(context.Context) (store.Store, error) { return memstore.New(), nil },
		Logf: t.Logf,
	})
	sigs := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() { done <- m.Run(sigs) }()
	<-l.asked
	select {
	case <-bound:
		t.Fatal("the standby opened its STOMP listener before holding the lock")
	default:
	}
	close(l.gate)
	ln := <-bound
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the master does not serve on the listener Bind gave: %v", err)
	}
	c.Close()
	sigs <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Fatalf("Run = %d after SIGTERM, want 0", code)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the listener is still open after the shutdown")
	}
}

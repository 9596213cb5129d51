package docker

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
)

var _ driver.ExitReporter = (*Driver)(nil)

// life is one start of a node's container, from ContainerStart to the
// end its watcher records once.
type life struct {
	// ended: the driver told the container to end (kill, stop, removal,
	// the end of the run), so its exit says nothing of the broker's own.
	ended atomic.Bool
}

// exits records how node containers ended (driver.ExitReporter).
type exits struct {
	mu   sync.Mutex
	list []driver.Exit
	wg   sync.WaitGroup // watchers still waiting
	// ctx ends the watchers when Close gives up waiting for them.
	ctx    context.Context
	cancel context.CancelFunc
}

func newExits() *exits {
	ctx, cancel := context.WithCancel(context.Background())
	return &exits{ctx: ctx, cancel: cancel}
}

// started begins a life of node n on container id, just started, and
// watches for its end: the engine's wait returns the container's exit
// code (State.ExitCode), which a broker that fails stop sets (refbroker
// exits 1).
func (d *Driver) started(n *node, id string) {
	l := &life{}
	n.mu.Lock()
	n.life = l
	n.mu.Unlock()
	x := d.exits
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		w := d.cli.ContainerWait(x.ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		e := driver.Exit{Node: n.spec.Name, Status: -1}
		select {
		case res := <-w.Result:
			e.Status, e.Signal = exitStatus(res.StatusCode)
		case <-w.Error:
			// The engine went away, or Close stopped waiting: the status
			// is unknown (-1).
		}
		e.At = time.Now().UTC()
		e.ByHarness = l.ended.Load()
		x.mu.Lock()
		x.list = append(x.list, e)
		x.mu.Unlock()
	}()
}

// exitStatus turns a container's exit code into an exit status and the
// signal that ended it: the engine reports a process a signal ended as
// 128 plus the signal's number (137 for SIGKILL), which the local driver
// reports as status -1 and the signal's name. A broker exiting with a
// status above 128 by itself is taken for a signal too (refbroker's are
// 0, 1 and 2).
func exitStatus(code int64) (int, string) {
	if code > 128 && code < 128+65 {
		return -1, syscall.Signal(code - 128).String()
	}
	return int(code), ""
}

// ending marks the current life of node n as ended by the harness,
// before the driver makes its container end.
func (n *node) ending() {
	n.mu.Lock()
	l := n.life
	n.mu.Unlock()
	if l != nil {
		l.ended.Store(true)
	}
}

// Exits returns how every node container ended so far, in order.
func (d *Driver) Exits() []driver.Exit {
	d.exits.mu.Lock()
	defer d.exits.mu.Unlock()
	return append([]driver.Exit(nil), d.exits.list...)
}

// wait waits, at most until ctx ends, for every watcher to record
// its container's end (Close, once the containers are removed), then
// stops the rest.
func (x *exits) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { x.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	x.cancel()
	x.wg.Wait()
}

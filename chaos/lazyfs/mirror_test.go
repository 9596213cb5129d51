package lazyfs

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRefbrokerMirrorFsyncEIO: the journal mirrored on the lazyfs and on
// a plain directory. An fsync EIO on the lazyfs copy drops it: the broker
// goes on acknowledging from the other copy, never retries the failed
// fsync, and after kill -9 and a power cut of the lazyfs (which drops
// what it never synced) it recovers every acknowledged message from the
// healthy copy, not from the stale one.
func TestRefbrokerMirrorFsyncEIO(t *testing.T) {
	l, _, mnt := mount(t)
	data, other := filepath.Join(mnt, "data"), t.TempDir()
	b := startRefbroker(t, data, "--data", other)
	c := dialBroker(t, b.addr)
	if err := sendDurable(c, "m0"); err != nil {
		t.Fatal(err)
	}
	l.InjectError(ErrorRule{Errno: syscall.EIO, Ops: OpFsync, Pattern: "*.log"})
	const n = 20
	for i := 1; i < n; i++ {
		if err := sendDurable(c, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatalf("m%d not acknowledged with one of two copies failed: %v", i, err)
		}
	}
	select {
	case <-b.done:
		t.Fatalf("refbroker exited with a healthy copy left: %v\n%s", b.err, b.stderr.String())
	default:
	}
	if got := l.Stats().Injected; got != 1 {
		t.Fatalf("%d failed fsyncs, want 1: a failed copy was synced again", got)
	}
	c.Disconnect()
	_ = b.cmd.Process.Kill()
	<-b.done // stderr is read only once the process is gone
	if !strings.Contains(b.stderr.String(), "ALARM") {
		t.Fatalf("no alarm logged for the dropped copy:\n%s", b.stderr.String())
	}
	l.ClearErrors()
	l.PowerCut()
	b = startRefbroker(t, data, "--data", other)
	got := receiveAll(t, b.addr, n)
	for i := 0; i < n; i++ {
		if !got[fmt.Sprintf("m%d", i)] {
			t.Fatalf("acknowledged m%d lost after the restart (got %d)", i, len(got))
		}
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	if !strings.Contains(b.stderr.String(), "recovering from "+filepath.Join(other, "journal")) {
		t.Fatalf("the broker did not recover from the healthy copy:\n%s", b.stderr.String())
	}
}

package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestRootTarDanglingSymlink: a listed symlink that resolves nowhere
// (Debian's activemq links to jars of packages it only recommends) is
// left out and counted, not an error, while a listed symlink that
// resolves comes in with its target; addHost alone fails on the
// dangling one.
func TestRootTarDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "real.jar")
	good := filepath.Join(dir, "good.jar")
	bad := filepath.Join(dir, "bad.jar")
	if err := os.WriteFile(file, []byte("jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, good); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "absent", "commons-lang.jar"), bad); err != nil {
		t.Fatal(err)
	}
	if err := newRootTar().addHost(bad); err == nil {
		t.Fatal("addHost of a dangling symlink: no error; the test would not show the fix")
	}
	rt := newRootTar()
	for _, p := range []string{good, bad, filepath.Join(dir, "not-there")} {
		if _, err := rt.addListed(p); err != nil {
			t.Fatalf("addListed(%s): %v", p, err)
		}
	}
	if !slices.Equal(rt.dangling, []string{bad}) {
		t.Errorf("dangling = %q, want [%s]", rt.dangling, bad)
	}
	body, err := rt.close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]byte{}
	tr := tar.NewReader(bytes.NewReader(body))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got["/"+strings.TrimSuffix(h.Name, "/")] = h.Typeflag
	}
	if got[good] != tar.TypeSymlink || got[file] != tar.TypeReg {
		t.Errorf("the resolving link and its file: %q %c, %q %c; want a symlink and a file", good, got[good], file, got[file])
	}
	if _, in := got[bad]; in {
		t.Errorf("the dangling link %s is in the image", bad)
	}
}

// TestActiveMQNode: a node of kind activemq (KahaDB, fsync always) runs
// in a container of the image made of this machine's Debian packages,
// reached over STOMP through the clients' link proxy; a persistent
// message whose SEND got its RECEIPT is still there after the container
// is killed (SIGKILL) and started again, KahaDB on the node's disk, while
// a non-persistent one sent beside it is gone (the broker did restart);
// Close leaves nothing.
func TestActiveMQNode(t *testing.T) {
	cli := engine(t)
	if err := peers.ActiveMQAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	run := "activemq-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.ActiveMQ, Store: scenario.ActiveMQKahaDB, Fsync: "always"}}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}}}
	d, addr := startPeerNode(t, topo, run, ActiveMQRepo)
	sendKeptLost(t, addr)
	killRestart(t, d, "a1")
	wantKeptOnly(t, addr)
	closeClean(t, cli, d, run)
}

// The queues of sendKeptLost's persistent and non-persistent messages.
const amqKept, amqLost = "/queue/lossbench-kept", "/queue/lossbench-transient"

// sendKeptLost sends, each with a RECEIPT, a persistent message to
// amqKept and a non-persistent one to amqLost, each its queue's name.
func sendKeptLost(t *testing.T, addr string) {
	t.Helper()
	withStomp(t, addr, func(c *stomp.Conn) {
		for _, m := range []struct{ dest, persistent string }{{amqKept, "true"}, {amqLost, "false"}} {
			if err := c.Send(m.dest, "text/plain", []byte(m.dest), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", m.persistent)); err != nil {
				t.Fatalf("send to %s: %v", m.dest, err)
			}
		}
	})
}

// wantKeptOnly wants, after a kill -9 and restart, sendKeptLost's
// persistent message back and the non-persistent one gone.
func wantKeptOnly(t *testing.T, addr string) {
	t.Helper()
	withStomp(t, addr, func(c *stomp.Conn) {
		if got, ok := stompGet(t, c, amqKept, 30*time.Second); !ok || got != amqKept {
			t.Errorf("after kill -9 and restart: %s gave %q, %v; want the persistent message", amqKept, got, ok)
		}
		if got, ok := stompGet(t, c, amqLost, 3*time.Second); ok {
			t.Errorf("after kill -9 and restart: %s gave %q; the non-persistent message should be gone", amqLost, got)
		}
	})
}

// withStomp runs f on a STOMP connection to addr.
func withStomp(t *testing.T, addr string, f func(*stomp.Conn)) {
	t.Helper()
	c, err := stomp.Dial("tcp", addr, stomp.ConnOpt.Host("localhost"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	f(c)
}

// stompGet subscribes to dest and returns the body of the first message,
// acknowledged, or ok false when none comes within wait (a bound on an
// empty queue, not a speed check).
func stompGet(t *testing.T, c *stomp.Conn, dest string, wait time.Duration) (body string, ok bool) {
	t.Helper()
	sub, err := c.Subscribe(dest, stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	select {
	case m := <-sub.C:
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		if err := c.Ack(m); err != nil {
			t.Fatal(err)
		}
		return string(m.Body), true
	case <-time.After(wait):
		return "", false
	}
}

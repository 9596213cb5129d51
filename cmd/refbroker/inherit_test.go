//go:build linux

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/listenfd"
	"github.com/lossbench/lossbench/broker/listenfd/listenfdtest"
)

// These tests run real refbrokers on sockets the test binds and hands
// down (--listen fd:3 --admin fd:4), as the harness's local driver does.

// boundSockets are one node's STOMP and admin sockets, held by the test
// across the node's runs.
type boundSockets struct {
	listen, admin         *os.File
	listenAddr, adminAddr string
}

func bindSockets(t *testing.T) *boundSockets {
	t.Helper()
	s := &boundSockets{}
	var err error
	if s.listen, s.listenAddr, err = listenfd.Bind("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.listen.Close() })
	if s.admin, s.adminAddr, err = listenfd.Bind("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.admin.Close() })
	return s
}

// launch runs refbroker named name on the sockets, with the master/slave
// flags ha and short lease timings, and waits for its admin endpoint.
func (s *boundSockets) launch(t *testing.T, name string, ha []string) *leased {
	t.Helper()
	args := append([]string{"--listen", "fd:3", "--admin", "fd:4", "--lease-owner", name,
		"--lease-renew", "200ms", "--lease-ttl", leaseTTL.String(), "--lease-margin", leaseMargin.String()}, ha...)
	cmd := exec.Command(binary(t), args...)
	cmd.ExtraFiles = []*os.File{s.listen, s.admin}
	p := launchCmd(t, cmd)
	p.addr = s.listenAddr
	want := "admin on http://" + s.adminAddr
	for !strings.Contains(p.stderr.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before its admin was up: %v\n%s", name, p.err, p.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &leased{proc: p, name: name, admin: s.adminAddr}
}

// exited stops the sockets listening after the broker's exit, as the
// driver does when it reaps the process.
func (s *boundSockets) exited(t *testing.T) {
	t.Helper()
	for _, f := range []*os.File{s.listen, s.admin} {
		if err := listenfd.Stop(f); err != nil {
			t.Fatal(err)
		}
	}
}

// waitStandby waits until l stands by behind holder.
func waitStandby(t *testing.T, l *leased, holder string) {
	t.Helper()
	for {
		if l.ready() == 503 {
			if s := l.status(t); s.Role == "standby" && s.Lease != nil && s.Lease.Holder == holder {
				return
			}
		}
		select {
		case <-l.done:
			t.Fatalf("%s exited while standing by: %v\n%s", l.name, l.err, l.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestInheritedSocketsFailover: shared-storage master/slave on inherited
// sockets. The standby refuses STOMP clients (its socket is bound, not
// listening); the killed master's clients are refused once its parent
// reaps it, not left hanging; the standby takes over on its own socket
// with every receipted message; the old master restarts on the very same
// sockets as a standby, refusing clients, and serves on its old address
// again once the new master hands over.
func TestInheritedSocketsFailover(t *testing.T) {
	ha := sharedDir(t)
	sa, sb := bindSockets(t), bindSockets(t)
	a := sa.launch(t, "broker-a", ha)
	a.waitReady(t, 30*time.Second)
	b := sb.launch(t, "broker-b", ha)
	waitStandby(t, b, "broker-a")
	listenfdtest.Refused(t, sb.listenAddr, "the standby")
	sendPersistent(t, a.addr, "m", 20)

	a.kill9()
	sa.exited(t)
	listenfdtest.Refused(t, sa.listenAddr, "the killed master")
	listenfdtest.Refused(t, sa.adminAddr, "the killed master's admin")

	b.waitReady(t, 30*time.Second)
	if seen := drain(t, b.addr); len(seen) != 20 {
		t.Fatalf("the new master holds %d of the 20 receipted messages", len(seen))
	}

	a2 := sa.launch(t, "broker-a", ha)
	waitStandby(t, a2, "broker-b")
	listenfdtest.Refused(t, sa.listenAddr, "the restarted old master, standing by")

	sendPersistent(t, b.addr, "n", 5)
	b.stop() // releases the lease: a2 takes over at once
	sb.exited(t)
	listenfdtest.Refused(t, sb.listenAddr, "the stopped master")
	a2.waitReady(t, 30*time.Second)
	if seen := drain(t, sa.listenAddr); len(seen) != 5 {
		t.Fatalf("the restarted broker serves %d of the 5 receipted messages on its old address", len(seen))
	}
}

// TestInheritedSocketErrors: an fd: address that is no socket is a
// startup error naming the flag, exit 2.
func TestInheritedSocketErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "fd:9", "--admin="}, "--listen: listenfd: fd:9: not an inherited socket"},
		{[]string{"--listen", "fd:x", "--admin="}, `--listen: listenfd: "fd:x"`},
		{[]string{"--listen", "127.0.0.1:0", "--admin", "fd:2"}, `--admin: listenfd: "fd:2"`},
	} {
		p := launch(t, append(c.args, "--store", "memory")...)
		if code := p.exitCode(); code != 2 {
			t.Fatalf("%v: exit %d, want 2:\n%s", c.args, code, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), c.want) {
			t.Fatalf("%v: stderr does not say %q:\n%s", c.args, c.want, p.stderr)
		}
	}
}

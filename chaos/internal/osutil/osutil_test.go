package osutil

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFreeAddrBinds(t *testing.T) {
	addr, err := FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the free address %s does not bind: %v", addr, err)
	}
	ln.Close()
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("one\ntwo\nthree\nfour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := Tail(p, 2), "  three\n  four"; got != want {
		t.Fatalf("Tail = %q, want %q", got, want)
	}
	if got := Tail(p, 10); !strings.HasPrefix(got, "  one\n") {
		t.Fatalf("Tail of a short file = %q", got)
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing"), 2); !strings.HasPrefix(got, "(no log: ") {
		t.Fatalf("Tail of a missing file = %q", got)
	}
}

// TestStopped: a child is not Stopped while it runs, is once SIGSTOP has
// taken effect on all its threads, and is not after SIGCONT.
func TestStopped(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	if s, err := Stopped(pid); err != nil || s {
		t.Fatalf("running child: Stopped = %v, %v", s, err)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, pid, true)
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, pid, false)
}

// waitStopped waits until Stopped(pid) is want.
func waitStopped(t *testing.T, pid int, want bool) {
	t.Helper()
	for {
		s, err := Stopped(pid)
		if err != nil {
			t.Fatal(err)
		}
		if s == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

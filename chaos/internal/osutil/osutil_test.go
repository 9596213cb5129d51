package osutil

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

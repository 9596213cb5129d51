package admin

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestLimitListener: with two admin connections open a third is closed
// unanswered; once one of the two closes, the next is served.
func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(nil, Options{})}
	lim := LimitListener(ln, 2)
	go srv.Serve(lim)
	defer srv.Close()
	healthz := func() (net.Conn, error) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err == nil {
			resp.Body.Close()
		}
		return nc, err
	}
	a, err := healthz()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := healthz(); err != nil {
		t.Fatal(err)
	}
	if _, err := healthz(); err == nil {
		t.Fatal("a third connection was served past the limit of 2")
	}
	a.Close()
	for deadline := time.Now().Add(10 * time.Second); lim.(*limitListener).open.Load() > 1; {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection still counts")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := healthz(); err != nil {
		t.Fatalf("no connection served after one of the two closed: %v", err)
	}
}

package dbtest

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestCutKeepsPort: a "reset" cut closes the proxied connections and
// fails new ones while the proxy keeps its port (nothing else can bind
// it); Restore passes connections again on the same address.
func TestCutKeepsPort(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					c.Write([]byte(line))
				}
				c.Read(make([]byte, 1)) // hold it open until the far side goes
			}()
		}
	}()
	p := Forward(t, "test", up.Addr().String())
	hello := func() (net.Conn, error) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("hi\n")); err != nil {
			c.Close()
			return nil, err
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	live, err := hello()
	if err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	defer live.Close()

	Cut(t, p, "reset")
	if _, err := live.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection open before the cut still reads")
	}
	if c, err := hello(); err == nil {
		c.Close()
		t.Fatal("a new connection passes a cut proxy")
	}
	if ln, err := net.Listen("tcp", p.Addr()); err == nil {
		ln.Close()
		t.Fatalf("cut: %s could be bound by another socket", p.Addr())
	}

	Restore(t, p, "reset")
	c, err := hello()
	if err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	c.Close()
}

package sqlstore_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/freeport"
)

// TestMySQLFailoverDSN on a real MariaDB: a DSN naming a refused
// address, a server that hangs up (a proxy whose server was killed) and
// the live server connects to the live one and stores there; a DSN of
// only dead servers fails as a lost connection (the broker reconnects).
func TestMySQLFailoverDSN(t *testing.T) {
	opts := freshOptions(t, target{name: "mariadb", kind: dbserver.MariaDB})
	live := server(t, dbserver.MariaDB).Addr()
	refused, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hangsUp := ln.Addr().String()
	if !strings.Contains(opts.DSN, "("+live+")") {
		t.Fatalf("DSN %q does not name %s", opts.DSN, live)
	}
	list := opts
	list.DSN = strings.Replace(opts.DSN, "("+live+")", "("+refused+","+hangsUp+","+live+")", 1)
	s := mustOpen(t, list)
	m := &store.Message{Queue: "/queue/f", Body: []byte("on the third server")}
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{m}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts) // the live server alone
	var got []*store.Message
	if err := s.Recover(ctx, func(m *store.Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(got) != 1 || string(got[0].Body) != "on the third server" {
		t.Fatalf("the live server holds %d messages %v, want the one written through the list", len(got), got)
	}

	dead := opts
	dead.DSN = strings.Replace(opts.DSN, "("+live+")", "("+refused+","+hangsUp+")", 1)
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if s, err := sqlstore.Open(octx, dead); err == nil {
		s.Close()
		t.Fatal("Open on two dead servers succeeded")
	} else if !sqlstore.IsConnectionError(err) {
		t.Fatalf("Open on two dead servers: %v, not a connection error", err)
	}
}

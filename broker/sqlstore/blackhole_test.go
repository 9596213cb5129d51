package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// TestCommitTimeoutBlackhole: a database that stops answering without
// closing the connection (every byte held by a toxiproxy "timeout"
// toxic) fails the store once CommitTimeout has passed, with a
// connection error (so refbroker reconnects) and without acknowledging
// the batch; without the deadline the Write would wait forever.
func TestCommitTimeoutBlackhole(t *testing.T) {
	for _, kind := range []dbserver.Kind{dbserver.Postgres, dbserver.MariaDB} {
		t.Run(string(kind), func(t *testing.T) {
			srv := server(t, kind)
			opts := freshOptions(t, target{name: string(kind), kind: kind})
			p, dsn := dbtest.Proxy(t, srv, opts.DSN, "store->db")
			opts.DSN = dsn
			const timeout = 700 * time.Millisecond
			opts.CommitTimeout = timeout
			s := mustOpen(t, opts)
			defer func() {
				closed := make(chan error, 1)
				go func() { closed <- s.Close() }()
				select {
				case <-closed:
				case <-time.After(2 * timeout):
					t.Error("Close hung after the commit deadline")
				}
			}()
			ctx := context.Background()
			if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "q", Body: []byte("before")}}}); err != nil {
				t.Fatalf("write before the black hole: %v", err)
			}
			dbtest.Cut(t, p, "blackhole")
			start := time.Now()
			var err error
			done := make(chan error, 1)
			go func() {
				done <- s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "q", Body: []byte("into the hole")}}})
			}()
			select {
			case err = <-done:
			case <-time.After(timeout + 20*time.Second):
				t.Fatalf("Write still waiting %v after the commit deadline of %v", time.Since(start), timeout)
			}
			took := time.Since(start)
			t.Logf("%s: write into the black hole failed after %v (deadline %v): %v", kind, took.Round(time.Millisecond), timeout, err)
			if err == nil {
				t.Fatal("a write into a black-holed database was acknowledged")
			}
			if !errors.Is(err, store.ErrFailed) {
				t.Errorf("error does not wrap store.ErrFailed: %v", err)
			}
			if !sqlstore.IsConnectionError(err) {
				t.Errorf("a commit past its deadline is not a connection error: %v", err)
			}
			if took < timeout {
				t.Errorf("failed after %v, before its deadline %v", took, timeout)
			}
		})
	}
}

// TestTxIdleTimeoutReachesTheServer: the store's sessions carry
// TxIdleTimeout as the server's idle-in-transaction limit (what ends a
// cut-off master's transaction and frees the lease row), unless the DSN
// sets it.
func TestTxIdleTimeoutReachesTheServer(t *testing.T) {
	cases := []struct {
		kind  dbserver.Kind
		query string
		want  string // 1.5 s
		dsn   string // a DSN setting of its own, and what it reads then
		dsnIs string
	}{
		{dbserver.Postgres, "SHOW idle_in_transaction_session_timeout", "1500ms", "&idle_in_transaction_session_timeout=7000", "7s"},
		{dbserver.MariaDB, "SELECT @@session.idle_transaction_timeout", "2", "&idle_transaction_timeout=7", "7"},
	}
	for _, c := range cases {
		t.Run(string(c.kind), func(t *testing.T) {
			server(t, c.kind)
			read := func(opts sqlstore.Options) string {
				s := mustOpen(t, opts)
				defer s.Close()
				var v string
				if err := s.DB().QueryRow(c.query).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			opts := freshOptions(t, target{name: string(c.kind), kind: c.kind})
			opts.TxIdleTimeout = 1500 * time.Millisecond
			if got := read(opts); got != c.want {
				t.Errorf("TxIdleTimeout 1.5s: server says %q, want %q", got, c.want)
			}
			sep := "?"
			if strings.Contains(opts.DSN, "?") {
				sep = ""
			} else {
				c.dsn = strings.Replace(c.dsn, "&", "", 1)
			}
			opts.DSN += sep + c.dsn
			if got := read(opts); got != c.dsnIs {
				t.Errorf("DSN setting %s: server says %q, want %q", c.dsn, got, c.dsnIs)
			}
		})
	}
}

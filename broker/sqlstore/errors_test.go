package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

func TestIsConnectionError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	failed := func(err error) error { // as sqlstore's commit wraps it
		return fmt.Errorf("%w: sqlstore: postgres commit: %w", store.ErrFailed, err)
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"store failed alone", store.ErrFailed, false},
		{"bad conn", driver.ErrBadConn, true},
		{"conn done", sql.ErrConnDone, true},
		{"unexpected EOF in a failed commit", failed(io.ErrUnexpectedEOF), true},
		{"EOF", fmt.Errorf("read: %w", io.EOF), true},
		{"connection refused", refused, true},
		{"connection refused errno", fmt.Errorf("x: %w", syscall.ECONNREFUSED), true},
		{"connection reset", failed(syscall.ECONNRESET), true},
		{"broken pipe", failed(syscall.EPIPE), true},
		{"host unreachable", syscall.EHOSTUNREACH, true},
		{"deadline on connect", fmt.Errorf("sqlstore: connect postgres: %w", context.DeadlineExceeded), true},
		{"cancelled", fmt.Errorf("sqlstore: connect postgres: %w", context.Canceled), false},
		{"pgx closed conn", failed(pgconn.ErrConnClosed), true},
		{"pg connection failure 08006", failed(&pgconn.PgError{Code: "08006"}), true},
		{"pg admin shutdown 57P01", failed(&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), true},
		{"pg crash shutdown 57P02", &pgconn.PgError{Code: "57P02"}, true},
		{"pg starting up 57P03", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{"pg standby only (target_session_attrs)", fmt.Errorf("sqlstore: connect postgres: %w", errors.Join(
			fmt.Errorf("127.0.1.250:5432: %w", io.ErrUnexpectedEOF), fmt.Errorf("127.0.2.250:5432: %w", pgconn.ErrReadOnlyConnection))), true},
		{"pg standby only, one host", fmt.Errorf("connect: %w", pgconn.ErrReadOnlyConnection), true},
		{"pg read-only transaction 25006", failed(&pgconn.PgError{Code: "25006"}), true},
		{"pg unique violation", failed(&pgconn.PgError{Code: "23505"}), false},
		{"pg check violation", failed(&pgconn.PgError{Code: "23514"}), false},
		{"pg undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"pg disk full", &pgconn.PgError{Code: "53100"}, false},
		{"pg data corrupted", &pgconn.PgError{Code: "XX001"}, false},
		{"pg bad password", &pgconn.PgError{Code: "28P01"}, false},
		{"mysql invalid conn", failed(mysql.ErrInvalidConn), true},
		{"mariadb server shutdown", &mysql.MySQLError{Number: 1053}, true},
		{"mariadb connection killed", &mysql.MySQLError{Number: 1927}, true},
		{"galera node not ready 1047", failed(&mysql.MySQLError{Number: 1047, Message: "WSREP has not yet prepared node for application use"}), true},
		{"mariadb duplicate key", failed(&mysql.MySQLError{Number: 1062}), false},
		{"mariadb no such table", &mysql.MySQLError{Number: 1146}, false},
		{"disk error", failed(syscall.EIO), false},
		{"disk full", failed(syscall.ENOSPC), false},
	}
	for _, tt := range tests {
		if got := sqlstore.IsConnectionError(tt.err); got != tt.want {
			t.Errorf("%s: IsConnectionError(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestIsConnectionErrorReal classifies what the drivers really return: a
// refused connect, a commit refused by a constraint, and (PostgreSQL) a
// commit on a killed server.
func TestIsConnectionErrorReal(t *testing.T) {
	closed := closedPort(t)
	for _, o := range []sqlstore.Options{
		{Driver: "postgres", DSN: "postgres://postgres@" + closed + "/none?sslmode=disable&connect_timeout=5"},
		{Driver: "mysql", DSN: "root@tcp(" + closed + ")/none?timeout=5s"},
	} {
		_, err := sqlstore.Open(ctx, o)
		if err == nil || !sqlstore.IsConnectionError(err) {
			t.Errorf("%s on a closed port: IsConnectionError(%v) = false", o.Driver, err)
		}
	}
	for _, tg := range targets[1:] {
		t.Run(tg.name, func(t *testing.T) {
			opts := freshOptions(t, tg)
			s := mustOpen(t, opts)
			defer s.Close()
			one := func() error {
				return s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/e", Body: []byte("x")}}})
			}
			if err := one(); err != nil {
				t.Fatal(err)
			}
			db := rawDB(t, tg, opts)
			if _, err := db.ExecContext(ctx, "ALTER TABLE lossbench_msgs ADD CONSTRAINT no_more CHECK (seq < 0)"); err == nil {
				t.Fatal("constraint added over an existing row")
			}
			if _, err := db.ExecContext(ctx, "DELETE FROM lossbench_msgs"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "ALTER TABLE lossbench_msgs ADD CONSTRAINT no_more CHECK (seq < 0)"); err != nil {
				t.Fatal(err)
			}
			err := one()
			if !errors.Is(err, store.ErrFailed) || sqlstore.IsConnectionError(err) {
				t.Fatalf("commit refused by a constraint: %v; IsConnectionError = %v, want a store failure that is not one",
					err, sqlstore.IsConnectionError(err))
			}
			t.Logf("%s constraint: %v", tg.name, err)
		})
	}
	t.Run("postgres killed", func(t *testing.T) {
		srv := server(t, targets[1].kind)
		s := mustOpen(t, freshOptions(t, targets[1]))
		defer s.Close()
		write := func() error {
			return s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/e", Body: []byte("x")}}})
		}
		if err := write(); err != nil {
			t.Fatal(err)
		}
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := srv.Restart(rctx); err != nil {
				t.Fatal(err)
			}
		}()
		err := write()
		if !errors.Is(err, store.ErrFailed) || !sqlstore.IsConnectionError(err) {
			t.Fatalf("commit on a killed server: %v; IsConnectionError = %v, want true", err, sqlstore.IsConnectionError(err))
		}
		t.Logf("killed: %v", err)
		_, err = sqlstore.Open(ctx, sqlstore.Options{Driver: "postgres", DSN: srv.DSN("")})
		if err == nil || !sqlstore.IsConnectionError(err) {
			t.Fatalf("Open on a killed server: IsConnectionError(%v) = false", err)
		}
	})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

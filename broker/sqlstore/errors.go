package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// IsConnectionError reports whether err says the database could not be
// reached or the connection to it was lost: the database, not the data,
// is the problem, so the same work may succeed once it answers again. It
// looks through wrapping (store.ErrFailed, "sqlstore: postgres commit: …").
//
// Connection errors: driver.ErrBadConn and sql.ErrConnDone; io.EOF and
// io.ErrUnexpectedEOF (the server went away mid-reply); a failed network
// operation (net.OpError, net.DNSError, a socket deadline) and
// ECONNREFUSED, ECONNRESET, ECONNABORTED, EPIPE, EHOSTUNREACH and
// ENETUNREACH; a context deadline (no answer in time; a cancelled context
// is not one); pgx's closed connection; PostgreSQL SQLSTATE class 08
// (connection exception) and 57P01-57P03 (the server shutting down,
// crashed or still starting); the MySQL driver's ErrInvalidConn and
// MariaDB's 1053 (server shutdown) and 1927 (connection killed). A failed
// connect (pgconn.ConnectError) is judged by its cause: a refused or
// timed-out dial is one, a refused password is not.
//
// A PostgreSQL standby where a primary was wanted is one too: a DSN with
// several hosts and target_session_attrs=read-write fails with
// pgconn.ErrReadOnlyConnection while no host is a primary (the old one
// lost, its standby not yet promoted), and a session on a standby fails
// a write with SQLSTATE 25006 (read_only_sql_transaction). Reconnecting
// later finds the promoted primary. So is a MariaDB Galera node that
// answers but is not ready (cut off in a minority, still joining): error
// 1047 (ER_UNKNOWN_COM_ERROR, "WSREP has not yet prepared node for
// application use"), or, on connect through a DSN with several servers,
// none of them ready (see failover.go).
//
// A constraint violation, a schema error, corrupted data or a full disk
// are not: they are still there after a reconnect. Only a remote
// database produces these; SQLite has no connection to lose.
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	var (
		pgErr  *pgconn.PgError
		myErr  *mysql.MySQLError
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	switch {
	case errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, pgconn.ErrReadOnlyConnection), errors.Is(err, errNodeNotReady):
		return true
	case errors.As(err, &pgErr):
		// The server answered: only its connection-level codes count.
		return strings.HasPrefix(pgErr.Code, "08") ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" ||
			pgErr.Code == "25006"
	case errors.As(err, &myErr):
		return myErr.Number == 1053 || myErr.Number == 1927 || myErr.Number == 1047
	case errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &opErr),
		errors.As(err, &dnsErr):
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

package dbserver_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
)

// startOrSkip starts a server of kind in a fresh directory, closed at the
// end of the test, or skips the test when the binaries are missing.
func startOrSkip(t *testing.T, kind dbserver.Kind) *dbserver.Server {
	t.Helper()
	if err := dbserver.Available(kind); err != nil {
		t.Skipf("%s: %v", kind, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	start := dbserver.StartPostgres
	if kind == dbserver.MariaDB {
		start = dbserver.StartMariaDB
	}
	s, err := start(ctx, dir, dbserver.WithLogf(t.Logf))
	if s != nil {
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresLifecycle(t *testing.T) { testLifecycle(t, dbserver.Postgres) }
func TestMariaDBLifecycle(t *testing.T)  { testLifecycle(t, dbserver.MariaDB) }

// testLifecycle commits a row, kills the server, restarts it and finds the
// row; pauses it and sees a query time out, resumes it and sees it answer.
func testLifecycle(t *testing.T, kind dbserver.Kind) {
	s := startOrSkip(t, kind)
	ctx := context.Background()
	db := oneRow(t, s)

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("running after Kill")
	}
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping of a killed server succeeded")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after restart: n=%d err=%v", n, err)
	}

	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := db.QueryRowContext(qctx, "SELECT count(*) FROM t").Scan(&n)
	cancel()
	if err == nil {
		t.Fatalf("query on a paused server: %v", err)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.LogPath()); err != nil {
		t.Fatal(err)
	}
}

// oneRow creates database "other" on s with a table t of one row, and
// returns a handle on it (closed at the end of the test).
func oneRow(t *testing.T, s *dbserver.Server) *sql.DB {
	t.Helper()
	if err := s.CreateDatabase(context.Background(), "other"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(s.Driver(), s.DSN("other"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestPostgresWipe(t *testing.T) { testWipe(t, dbserver.Postgres) }
func TestMariaDBWipe(t *testing.T)  { testWipe(t, dbserver.MariaDB) }

// testWipe commits a row, wipes the server and restarts it: it answers,
// on an empty data directory: the database that held the row is gone,
// created again it is empty.
func testWipe(t *testing.T, kind dbserver.Kind) {
	s := startOrSkip(t, kind)
	ctx := context.Background()
	db := oneRow(t, s)
	if err := s.Wipe(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("running after Wipe")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // no connection of the wiped server's
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err == nil {
		t.Fatalf("after a wipe table t still has %d rows", n)
	}
	if err := s.CreateDatabase(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after a wipe: %d rows, %v; want an empty table", n, err)
	}
}

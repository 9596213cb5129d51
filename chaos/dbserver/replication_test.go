package dbserver_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
)

// shmDir is a fresh folder on tmpfs when there is one (a killed server's
// recovery is then quick under load), else a test temporary folder.
func shmDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "dbserver-repl-")
		if err == nil && os.Chmod(d, 0o755) == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func replOpts(t *testing.T) []dbserver.Option {
	return []dbserver.Option{dbserver.WithLogf(t.Logf), dbserver.WithReplication()}
}

// TestPostgresStandbyPromoteRebuild: a synchronous standby has every
// committed row; while it is down a synchronous commit waits; promoted
// after the primary is killed, it has the rows and takes writes; the old
// primary, rebuilt as a standby of it, replays them and refuses writes.
func TestPostgresStandbyPromoteRebuild(t *testing.T) {
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := shmDir(t)
	p, err := dbserver.StartPostgres(ctx, root+"/p", replOpts(t)...)
	if p != nil {
		t.Cleanup(func() { p.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	sb, err := dbserver.StartPostgresStandby(ctx, root+"/s", p.Addr(), "pg_b", replOpts(t)...)
	if sb != nil {
		t.Cleanup(func() { sb.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetSynchronousStandbys(ctx, "pg_b"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	if err := p.WaitStandby(wctx, "pg_b", true); err != nil {
		t.Fatal(err)
	}
	wcancel()
	if in, err := sb.InRecovery(ctx); err != nil || !in {
		t.Fatalf("standby in recovery = %v, %v", in, err)
	}

	pdb := open(t, p)
	mustExec(t, pdb, "CREATE TABLE t (id INT PRIMARY KEY)")
	for i := 0; i < 100; i++ {
		mustExec(t, pdb, "INSERT INTO t VALUES ($1)", i)
	}
	// Synchronous: with the standby frozen a commit does not return.
	if err := sb.Pause(); err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = pdb.ExecContext(qctx, "INSERT INTO t VALUES (1000)")
	qcancel()
	if err == nil {
		t.Fatal("a synchronous commit returned with its standby paused")
	}
	if err := sb.Resume(); err != nil {
		t.Fatal(err)
	}
	pdb.Close()

	// The primary is lost: every committed row is on the standby.
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if in, err := sb.InRecovery(ctx); err != nil || in {
		t.Fatalf("promoted standby in recovery = %v, %v", in, err)
	}
	sdb := open(t, sb)
	defer sdb.Close()
	if n := count(t, sdb); n < 100 {
		t.Fatalf("promoted standby has %d of the 100 committed rows", n)
	}
	mustExec(t, sdb, "INSERT INTO t VALUES (2000)")

	// The old primary comes back only as a standby of the new one.
	if err := p.RebuildStandby(ctx, sb.Addr(), "pg_a"); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetSynchronousStandbys(ctx, "pg_a"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := sb.WaitStandby(wctx, "pg_a", true); err != nil {
		t.Fatal(err)
	}
	mustExec(t, sdb, "INSERT INTO t VALUES (2001)")
	odb := open(t, p)
	defer odb.Close()
	if in, err := p.InRecovery(ctx); err != nil || !in {
		t.Fatalf("rebuilt old primary in recovery = %v, %v", in, err)
	}
	if _, err := odb.ExecContext(ctx, "INSERT INTO t VALUES (3000)"); err == nil {
		t.Fatal("the rebuilt old primary took a write")
	}
	// remote flush, not apply: poll for the replay.
	deadline := time.Now().Add(time.Minute)
	for count(t, odb) != count(t, sdb) {
		if time.Now().After(deadline) {
			t.Fatalf("rebuilt standby has %d rows, primary %d", count(t, odb), count(t, sdb))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func open(t *testing.T, s *dbserver.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open(s.Driver(), s.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

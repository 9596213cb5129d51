package bench

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/lossbench/lossbench/chaos/dbserver"
)

// DBFigures are a database server's own commit rate, measured in the same
// run as the broker cells that use it: single-row 1 KiB INSERTs, each its
// own transaction, as pgbench's simple insert test.
type DBFigures struct {
	Kind string `json:"kind"`
	// Commits1 is commits per second with 1 client; Commits16 with 16.
	Commits1  float64 `json:"commits_per_sec_1_client"`
	Commits16 float64 `json:"commits_per_sec_16_clients"`
}

// databases starts each database server a matrix needs once, and hands
// every cell a fresh database on it.
type databases struct {
	dir     string
	logf    func(string, ...any)
	mu      sync.Mutex
	servers map[string]*dbserver.Server
	// standbys are the replicated kinds' standbys, closed with them.
	standbys []*dbserver.Server
	n        int
}

// The replicated database kinds a target's DB may name: a PostgreSQL
// primary with one standby streaming from it on 127.0.0.1 (no proxy),
// synchronous (a COMMIT waits until the standby has flushed it),
// synchronous with remote_apply (until the standby has applied it) or
// asynchronous. A cell's broker is given the primary.
const (
	PostgresSyncStandby  = "postgres-sync-standby"
	PostgresApplyStandby = "postgres-apply-standby"
	PostgresAsyncStandby = "postgres-async-standby"
)

// server returns the server named key: a kind ("postgres"), or a kind
// with a suffix for a further server of that kind ("postgres#2").
func (d *databases) server(ctx context.Context, key string) (*dbserver.Server, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.servers[key]; s != nil {
		return s, nil
	}
	kind, _, _ := strings.Cut(key, "#")
	k := dbserver.Kind(kind)
	if kind == PostgresSyncStandby || kind == PostgresApplyStandby || kind == PostgresAsyncStandby {
		k = dbserver.Postgres
	}
	if err := dbserver.Available(k); err != nil {
		return nil, err
	}
	dir := filepath.Join(d.dir, "db-"+strings.ReplaceAll(key, "#", "-"))
	var s *dbserver.Server
	var err error
	switch kind {
	case PostgresSyncStandby, PostgresApplyStandby, PostgresAsyncStandby:
		s, err = d.startPair(ctx, dir, kind != PostgresAsyncStandby, kind == PostgresApplyStandby)
	case string(dbserver.Postgres):
		s, err = dbserver.StartPostgres(ctx, dir)
	case string(dbserver.MariaDB):
		s, err = dbserver.StartMariaDB(ctx, dir)
	default:
		return nil, fmt.Errorf("bench: unknown database kind %q", kind)
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, fmt.Errorf("bench: start %s: %w", kind, err)
	}
	if d.servers == nil {
		d.servers = map[string]*dbserver.Server{}
	}
	d.servers[key] = s
	d.logf("%s server on %s (data %s)", key, s.Addr(), dir)
	return s, nil
}

// startPair starts a PostgreSQL primary in dir/primary and a standby of
// it in dir/standby, synchronous or not, and returns the primary once the
// standby streams (and counts as synchronous). d.mu is held.
func (d *databases) startPair(ctx context.Context, dir string, sync, apply bool) (*dbserver.Server, error) {
	opts := []dbserver.Option{dbserver.WithReplication()}
	if apply {
		opts = append(opts, dbserver.WithSetting("synchronous_commit", "remote_apply"))
	}
	p, err := dbserver.StartPostgres(ctx, filepath.Join(dir, "primary"), opts...)
	if err != nil {
		return p, err
	}
	sb, err := dbserver.StartPostgresStandby(ctx, filepath.Join(dir, "standby"), p.Addr(), "standby", dbserver.WithReplication())
	if sb != nil {
		d.standbys = append(d.standbys, sb)
	}
	if err != nil {
		return p, err
	}
	if sync {
		if err := p.SetSynchronousStandbys(ctx, "standby"); err != nil {
			return p, err
		}
	}
	return p, p.WaitStandby(ctx, "standby", sync)
}

// fresh creates a new database on the kind's server and returns the
// refbroker flags that select it.
func (d *databases) fresh(ctx context.Context, kind string) ([]string, error) {
	s, name, err := d.freshDatabase(ctx, kind)
	if err != nil {
		return nil, err
	}
	driver := "postgres"
	if s.Kind == dbserver.MariaDB {
		driver = "mysql"
	}
	return []string{"--db-driver", driver, "--dsn", s.DSN(name)}, nil
}

// freshDatabase creates a new database on the kind's server and returns
// the server and the database's name.
func (d *databases) freshDatabase(ctx context.Context, kind string) (*dbserver.Server, string, error) {
	s, err := d.server(ctx, kind)
	if err != nil {
		return nil, "", err
	}
	d.mu.Lock()
	d.n++
	name := fmt.Sprintf("bench_%d", d.n)
	d.mu.Unlock()
	if err := s.CreateDatabase(ctx, name); err != nil {
		return nil, "", fmt.Errorf("bench: create database %s on %s: %w", name, kind, err)
	}
	return s, name, nil
}

// probe measures the kind's raw commit rate for dur with 1 and 16 clients.
func (d *databases) probe(ctx context.Context, kind string, dur time.Duration) (DBFigures, error) {
	f := DBFigures{Kind: kind}
	s, err := d.server(ctx, kind)
	if err != nil {
		return f, err
	}
	const name = "bench_probe"
	if err := s.CreateDatabase(ctx, name); err != nil {
		return f, err
	}
	db, err := sql.Open(s.Driver(), s.DSN(name))
	if err != nil {
		return f, err
	}
	defer db.Close()
	db.SetMaxOpenConns(16)
	blob := "BYTEA"
	if s.Kind == dbserver.MariaDB {
		blob = "LONGBLOB"
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS probe (id BIGINT PRIMARY KEY, body "+blob+")"); err != nil {
		return f, fmt.Errorf("bench: %s probe table: %w", kind, err)
	}
	insert := "INSERT INTO probe (id, body) VALUES ($1, $2)"
	if s.Kind == dbserver.MariaDB {
		insert = "INSERT INTO probe (id, body) VALUES (?, ?)"
	}
	var id atomic.Int64
	body := make([]byte, 1024)
	rate := func(clients int) (float64, error) {
		var n atomic.Int64
		var firstErr error
		var once sync.Once
		end := time.Now().Add(dur)
		start := time.Now()
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) && ctx.Err() == nil {
					if _, err := db.ExecContext(ctx, insert, id.Add(1), body); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return 0, fmt.Errorf("bench: %s probe insert: %w", kind, firstErr)
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}
	if f.Commits1, err = rate(1); err != nil {
		return f, err
	}
	if f.Commits16, err = rate(16); err != nil {
		return f, err
	}
	return f, nil
}

func (d *databases) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.servers {
		s.Close()
	}
	for _, s := range d.standbys {
		s.Close()
	}
	d.servers, d.standbys = nil, nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/journal/mirror"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/cjdbc"
	"github.com/lossbench/lossbench/broker/store/journaled"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// openStore opens the store cfg names. ctx bounds opening the database
// stores, which give themselves at most 30 s (jdbc) or 60 s
// (journaled-jdbc, which also applies its journal) anyway. fence, when
// not nil, checks every database commit of the jdbc and journaled-jdbc
// stores (--lease); epoch, when not 0, fences the journal (--shared).
// Later stores (replicated) join this switch.
func openStore(ctx context.Context, cfg *config.Config, fence sqlstore.Fence, epoch int64, logf func(string, ...any)) (store.Store, error) {
	switch cfg.Store {
	case "memory":
		return memstore.New(), nil
	case "journal":
		jo, err := journalOptions(cfg, logf)
		if err != nil {
			return nil, err
		}
		jo.Epoch = epoch
		dir := filepath.Join(cfg.Data.First(), "journal")
		if len(cfg.Data) > 1 {
			return openMirrored(cfg, jo, logf)
		}
		if err := mirror.CheckAlone(nil, dir); err != nil {
			return nil, err
		}
		if cfg.Shared {
			// A new master holds the lease; an ex-master that has not
			// exited yet (paused, or stuck on the storage) still holds
			// the journal's directory lock: wait for it to go.
			jo.LockTimeout = -1
		}
		st, err := journal.Open(dir, jo)
		if err != nil {
			return nil, fmt.Errorf("open journal %s: %w", dir, err)
		}
		return st, nil
	case "jdbc":
		if len(cfg.DSNs) > 1 {
			return openReplicated(ctx, cfg, logf)
		}
		opts, where, err := sqlOptions(cfg, logf)
		if err != nil {
			return nil, err
		}
		opts.Fence = fence
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := sqlstore.Open(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("open jdbc store (%s): %w", where, err)
		}
		return st, nil
	case "journaled-jdbc":
		pol, err := journal.ParseSyncPolicy(cfg.Fsync)
		if err != nil {
			return nil, fmt.Errorf("--fsync: %w", err)
		}
		opts, where, err := sqlOptions(cfg, logf)
		if err != nil {
			return nil, err
		}
		opts.Fence = fence
		dir := filepath.Join(cfg.Data.First(), "journal")
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		st, err := journaled.Open(ctx, journaled.Options{
			Dir:      dir,
			Journal:  journal.Options{Sync: pol, SegmentSize: int64(cfg.SegmentSize), Repair: cfg.Repair, Logf: logf},
			SQL:      opts,
			Interval: cfg.CheckpointInterval,
			MaxBytes: int64(cfg.CheckpointBytes),
			Logf:     logf,
		})
		if err != nil {
			return nil, fmt.Errorf("open journaled-jdbc store (journal %s, database %s): %w", dir, where, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("--store: unknown store %q (want memory, journal, jdbc or journaled-jdbc)", cfg.Store)
}

// journalOptions are the journal's settings from cfg (--fsync,
// --segment-size, --repair, --max-memory), for the journal store and a
// replicated node's.
func journalOptions(cfg *config.Config, logf func(string, ...any)) (journal.Options, error) {
	pol, err := journal.ParseSyncPolicy(cfg.Fsync)
	if err != nil {
		return journal.Options{}, fmt.Errorf("--fsync: %w", err)
	}
	budget := int64(cfg.MaxMemory)
	if budget == 0 {
		budget = -1 // no bound, as for the broker
	}
	return journal.Options{Sync: pol, SegmentSize: int64(cfg.SegmentSize), Repair: cfg.Repair, Logf: logf, RecoverBodyBudget: budget}, nil
}

// openMirrored opens the journal mirrored in <data>/journal of every
// --data directory.
func openMirrored(cfg *config.Config, jo journal.Options, logf func(string, ...any)) (store.Store, error) {
	var dirs []mirror.Dir
	for _, d := range cfg.Data {
		dirs = append(dirs, mirror.Dir{Path: filepath.Join(d, "journal")})
	}
	st, err := mirror.OpenJournal(dirs, mirror.Options{MinMirrors: cfg.MinMirrors, Logf: logf}, jo)
	if err != nil {
		return nil, fmt.Errorf("open mirrored journal (%s): %w", cfg.Data, err)
	}
	return st, nil
}

// openReplicated opens the C-JDBC store over cfg.DSNs (--dsn given
// several times): it needs enough of them reachable (broker/store/cjdbc),
// and gives itself at most 60 s, copies to databases behind included.
func openReplicated(ctx context.Context, cfg *config.Config, logf func(string, ...any)) (store.Store, error) {
	pol, err := cjdbc.ParsePolicy(cfg.WritePolicy)
	if err != nil {
		return nil, fmt.Errorf("--write-policy: %w", err)
	}
	opts := cjdbc.Options{Policy: pol, MinDatabases: cfg.MinDatabases, Logf: logf}
	for i, dsn := range cfg.DSNs {
		driver := cfg.DBDriver
		if len(cfg.DBDrivers) > 0 {
			driver = cfg.DBDrivers[i]
		}
		if driver == "" {
			driver = "sqlite"
		}
		so := sqlstore.Options{Driver: driver, DSN: dsn, Logf: logf, CommitTimeout: cfg.DBCommitTimeout}
		if cfg.MaxMemory > 0 {
			so.BodyBudget = int64(cfg.MaxMemory)
		}
		if driver == "sqlite" && !strings.HasPrefix(dsn, "file:") {
			so.DSN, so.Path = "", dsn
			if !filepath.IsAbs(dsn) {
				so.Path = filepath.Join(cfg.Data.First(), dsn)
			}
		}
		name := driver + " " + redactDSN(dsn)
		opts.Databases = append(opts.Databases, cjdbc.Database{Name: name, Open: func(ctx context.Context) (cjdbc.DB, error) {
			return cjdbc.OpenSQL(ctx, so)
		}})
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := cjdbc.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("open replicated jdbc store (%d databases): %w", len(cfg.DSNs), err)
	}
	return st, nil
}

// sqlOptions are the database settings of the jdbc and journaled-jdbc
// stores; where names the database for error messages.
func sqlOptions(cfg *config.Config, logf func(string, ...any)) (opts sqlstore.Options, where string, err error) {
	opts = sqlstore.Options{Driver: cfg.DBDriver, DSN: cfg.DSN, Logf: logf, CommitTimeout: cfg.DBCommitTimeout}
	if cfg.Lease {
		// A master cut off mid-commit must not hold the lease row's lock
		// (its fence) past the lease: the server ends its transaction.
		opts.TxIdleTimeout = cfg.LeaseTTL
	}
	if cfg.MaxMemory > 0 {
		opts.BodyBudget = int64(cfg.MaxMemory)
	}
	if cfg.DSN != "" {
		driver := cfg.DBDriver
		if driver == "" {
			driver = "sqlite"
		}
		return opts, driver + " " + redactDSN(cfg.DSN), nil
	}
	if cfg.DBDriver != "" && cfg.DBDriver != "sqlite" {
		return opts, "", fmt.Errorf("--dsn: the %s database needs a data source name", cfg.DBDriver)
	}
	if err := os.MkdirAll(cfg.Data.First(), 0o755); err != nil {
		return opts, "", fmt.Errorf("--data: %w", err)
	}
	opts.Path = filepath.Join(cfg.Data.First(), "refbroker.db")
	return opts, "sqlite " + opts.Path, nil
}

// redactDSN hides a password in a DSN for error messages.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return dsn
	}
	user := dsn[:at]
	if i := strings.LastIndex(user, ":"); i >= 0 && !strings.HasSuffix(user[:i], "/") && !strings.HasPrefix(user[i:], "://") {
		return user[:i] + ":***" + dsn[at:]
	}
	return dsn
}

package main

import (
	"fmt"
	"path/filepath"

	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// openStore opens the store cfg names. Later stores (jdbc, replicated)
// join this switch.
func openStore(cfg *config.Config, logf func(string, ...any)) (store.Store, error) {
	switch cfg.Store {
	case "memory":
		return memstore.New(), nil
	case "journal":
		pol, err := journal.ParseSyncPolicy(cfg.Fsync)
		if err != nil {
			return nil, fmt.Errorf("--fsync: %w", err)
		}
		budget := int64(cfg.MaxMemory)
		if budget == 0 {
			budget = -1 // no bound, as for the broker
		}
		dir := filepath.Join(cfg.Data, "journal")
		st, err := journal.Open(dir, journal.Options{Sync: pol, Repair: cfg.Repair, Logf: logf, RecoverBodyBudget: budget})
		if err != nil {
			return nil, fmt.Errorf("open journal %s: %w", dir, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("--store: unknown store %q (want memory or journal)", cfg.Store)
}

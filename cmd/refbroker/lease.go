package main

import (
	"database/sql"
	"fmt"
	"net"
	"os"

	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/filelease"
	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/sqlstore"
)

// dbLease is the database lease (--lease) as refbroker's role.Lock: a
// broker.Lease with its own database handle, apart from the store's,
// closed once the lease is released.
type dbLease struct {
	*lease.Lease
	db *sql.DB
}

// openLease opens the database the store will use and a standby lease on
// it.
func openLease(cfg *config.Config, logf func(string, ...any)) (*dbLease, error) {
	opts, where, err := sqlOptions(cfg, logf)
	if err != nil {
		return nil, err
	}
	db, dialect, err := sqlstore.OpenDB(opts)
	if err != nil {
		return nil, fmt.Errorf("lease: open database (%s): %w", where, err)
	}
	owner := leaseOwner(cfg)
	l := lease.New(db, dialect, owner, lease.Options{Renew: cfg.LeaseRenew, TTL: cfg.LeaseTTL, Margin: cfg.LeaseMargin, Logf: logf})
	logf("lease: %s stands by on %s (renew %v, ttl %v, margin %v)", owner, where, cfg.LeaseRenew, cfg.LeaseTTL, cfg.LeaseMargin)
	return &dbLease{Lease: l, db: db}, nil
}

// Release releases the lease, so that a standby takes over at once, and
// closes the lease's database handle. The machine calls it after the
// store is closed.
func (d *dbLease) Release() error {
	err := d.Lease.Release()
	d.db.Close()
	return err
}

// openShared returns a standby file lease on the shared data directory
// (--shared).
func openShared(cfg *config.Config, logf func(string, ...any)) (*filelease.Lease, error) {
	owner := leaseOwner(cfg)
	l, err := filelease.New(cfg.Data.First(), owner, filelease.Options{TermOptions: role.TermOptions{
		Renew: cfg.LeaseRenew, TTL: cfg.LeaseTTL, Margin: cfg.LeaseMargin, Logf: logf}})
	if err != nil {
		return nil, fmt.Errorf("--shared: %w", err)
	}
	logf("shared: %s stands by on %s (renew %v, ttl %v, margin %v)", owner, cfg.Data.First(), cfg.LeaseRenew, cfg.LeaseTTL, cfg.LeaseMargin)
	return l, nil
}

// leaseOwner is --lease-owner or, by default, defaultOwner.
func leaseOwner(cfg *config.Config) string {
	if cfg.LeaseOwner != "" {
		return cfg.LeaseOwner
	}
	return defaultOwner(cfg.Listen)
}

// defaultOwner is "<hostname>/<listen address>", plus the pid when the
// port is 0: two brokers on one host must never share an owner, or both
// would pass each other's fence.
func defaultOwner(listen string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	owner := host + "/" + listen
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" || port == "" {
		owner += fmt.Sprintf("/pid%d", os.Getpid())
	}
	return owner
}

package fault

import (
	"context"
	"errors"

	"github.com/lossbench/lossbench/chaos/driver"
)

// SiteLost loses a whole site at once: every node and database server
// in it is killed and the nodes' disks wiped, as if the data centre
// burned, and on a driver whose sites are networks (driver.SiteNetworks)
// the site's network is taken from its nodes. Recover gives the network
// back, starts the database servers again (a replicated database's old
// primary as a standby) and the nodes on empty disks.
type SiteLost struct {
	Site      string
	Members   []string // the site's nodes
	Databases []string // the site's database servers
}

func (f *SiteLost) Name() string { return "site-lost " + f.Site }
func (f *SiteLost) Nodes() []string {
	return append(append([]string{}, f.Members...), f.Databases...)
}

func (f *SiteLost) Inject(ctx context.Context, d driver.Driver) error {
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	// Kill all first, so no node outlives another by a wipe's time.
	var dbs driver.Databases
	if len(f.Databases) > 0 {
		if dbs, err = databases(d, f.Name()); err != nil {
			return err
		}
	}
	var errs []error
	for _, n := range f.Members {
		errs = append(errs, d.Kill(ctx, n))
	}
	for _, db := range f.Databases {
		errs = append(errs, dbs.KillDB(ctx, db))
	}
	for _, n := range f.Members {
		errs = append(errs, dd.WipeNode(ctx, n))
	}
	if sn, ok := d.(driver.SiteNetworks); ok {
		errs = append(errs, sn.DisconnectSite(ctx, f.Site))
	}
	return errors.Join(errs...)
}

func (f *SiteLost) Recover(ctx context.Context, d driver.Driver) error {
	var errs []error
	if sn, ok := d.(driver.SiteNetworks); ok {
		if err := sn.ConnectSite(ctx, f.Site); err != nil {
			return err
		}
	}
	if len(f.Databases) > 0 {
		dbs, err := databases(d, f.Name())
		if err != nil {
			return err
		}
		for _, db := range f.Databases {
			errs = append(errs, dbs.RestartDB(ctx, db))
		}
	}
	for _, n := range f.Members {
		errs = append(errs, restart(ctx, d, n))
	}
	return errors.Join(errs...)
}

package fault

import (
	"context"
	"errors"

	"github.com/lossbench/lossbench/chaos/driver"
)

// SiteLost loses a whole site at once: every node in it is killed and
// its disks wiped, as if the data centre burned, and on a driver whose
// sites are networks (driver.SiteNetworks) the site's network is taken
// from its nodes. Recover gives the network back and starts the nodes
// again on empty disks.
type SiteLost struct {
	Site    string
	Members []string // the site's nodes
}

func (f *SiteLost) Name() string    { return "site-lost " + f.Site }
func (f *SiteLost) Nodes() []string { return f.Members }

func (f *SiteLost) Inject(ctx context.Context, d driver.Driver) error {
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	// Kill all first, so no node outlives another by a wipe's time.
	var errs []error
	for _, n := range f.Members {
		errs = append(errs, d.Kill(ctx, n))
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
	for _, n := range f.Members {
		errs = append(errs, restart(ctx, d, n))
	}
	return errors.Join(errs...)
}

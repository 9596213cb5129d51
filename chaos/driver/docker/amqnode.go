package docker

import (
	"fmt"
	"path/filepath"

	"github.com/moby/moby/api/types/mount"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// activeMQJDBCAvailable refuses, before any engine call, an activemq
// node on store jdbc when this machine lacks the JDBC driver and pool
// the image is made of (ActiveMQImage takes them from Debian's
// packages installed here).
func activeMQJDBCAvailable(n scenario.Node) error {
	if n.Broker.Store != scenario.ActiveMQJDBC {
		return nil
	}
	if err := peers.ActiveMQJDBCAvailable(); err != nil {
		return fmt.Errorf("docker: node %s: activemq store jdbc: the image takes the JDBC driver from this machine: %v: %w", n.Name, err, driver.ErrUnsupported)
	}
	return nil
}

// activemqMounts writes an activemq node's configuration into the run
// folder and returns its bind mount as ACTIVEMQ_BASE. With store jdbc
// the broker's JDBC URL is the node's proxy to its database (on its
// site network's gateway: link faults apply to it, as on local), and
// lib/postgresql.jar links to the driver's jar in the image.
func (n *node) activemqMounts() ([]mount.Mount, error) {
	a := n.activemq()
	a.Dir = filepath.Join(n.d.cfg.Dir, "nodes", n.spec.Name)
	if n.spec.Broker.Store == scenario.ActiveMQJDBC {
		dsn := n.dsn(n.spec.Broker.Database)
		if dsn == "" {
			return nil, fmt.Errorf("docker: node %s: store jdbc: database %q is not a server database of the topology", n.spec.Name, n.spec.Broker.Database)
		}
		var err error
		if a.JDBCURL, a.JDBCUser, err = peers.JDBCPostgres(dsn); err != nil {
			return nil, fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
		}
	}
	if err := a.Write(); err != nil {
		return nil, fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
	}
	return []mount.Mount{{Type: mount.TypeBind, Source: a.Dir, Target: activeMQDir}}, nil
}

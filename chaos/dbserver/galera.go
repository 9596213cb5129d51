package dbserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// MariaDB Galera: a multi-primary cluster of MariaDB servers (Debian's
// galera-4 and mariadb-server). Every node takes writes; a COMMIT returns
// once the write set is certified by the group (every node has it in
// memory, in order) and written to this node's redo log, so a committed
// transaction survives the loss of any node but the last. A node that
// joins or comes back receives the state it missed from a donor: the
// write sets in the donor's cache (IST) or a full copy by rsync (SST).
//
// Nodes find each other on 127.0.0.1 at the ports StartGalera allocates.
// Galera's group communication connects to the addresses its members
// advertise, so a proxy between two nodes would be bypassed: link faults
// do not reach it.
//
// When run as root, the nodes run as the "mysql" OS user: the rsync SST's
// receiving daemon, started by mariadbd as root, drops to nobody and
// cannot write the joiner's data directory ("rsync: [Receiver] ERROR:
// cannot stat destination "." (in rsync_sst): Permission denied (13)").

// galeraLib finds the Galera provider library.
func galeraLib() (string, error) {
	for _, p := range []string{"/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so", "/usr/lib64/galera-4/libgalera_smm.so"} {
		if fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no libgalera_smm.so (apt-get install galera-4)", ErrNotInstalled)
}

// GaleraAvailable reports whether a Galera cluster can be started: MariaDB,
// the galera-4 provider, rsync for state transfers, and, as root, the
// mysql OS user.
func GaleraAvailable() error {
	if _, _, err := mariaBins(""); err != nil {
		return err
	}
	if _, err := galeraLib(); err != nil {
		return err
	}
	if _, err := exec.LookPath("rsync"); err != nil {
		return fmt.Errorf("%w: no rsync for Galera's state transfer (apt-get install rsync)", ErrNotInstalled)
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("mysql"); err != nil {
			return fmt.Errorf("%w: no mysql OS user to run Galera nodes as", ErrNotInstalled)
		}
	}
	return nil
}

// StartGalera starts a Galera cluster of MariaDB nodes, one in each of
// dirs, named by the directory's base name: the first bootstraps the
// cluster, the others join it one after the other (each a state
// transfer). It returns once every node is synced and accepts clients. A
// node restarted later (Restart) joins the others again; it never
// bootstraps a cluster of its own. On error it returns the nodes started
// so far, for Close.
func StartGalera(ctx context.Context, dirs []string, opts ...Option) ([]*Server, error) {
	n := len(dirs)
	if n < 1 {
		return nil, errors.New("dbserver: StartGalera: no node")
	}
	lib, err := galeraLib()
	if err != nil {
		return nil, err
	}
	type ports struct{ group, ist, sst int }
	ps := make([]ports, n)
	var members []string
	for i := range ps {
		for _, p := range []*int{&ps[i].group, &ps[i].ist, &ps[i].sst} {
			if *p, err = osutil.FreePort("127.0.0.1"); err != nil {
				return nil, err
			}
		}
		members = append(members, "127.0.0.1:"+strconv.Itoa(ps[i].group))
	}
	var nodes []*Server
	for i := 0; i < n; i++ {
		p := ps[i]
		name := filepath.Base(dirs[i])
		extra := GaleraFlags(lib, name, members, members[i],
			fmt.Sprintf("gmcast.listen_addr=tcp://%s;ist.recv_addr=127.0.0.1:%d;gcache.size=32M", members[i], p.ist),
			fmt.Sprintf("127.0.0.1:%d", p.sst))
		o := append([]Option{func(c *config) { c.osUser = "mysql" }}, opts...)
		s, err := newMariaDB(ctx, dirs[i], extra, o)
		if s != nil {
			nodes = append(nodes, s)
		}
		if err != nil {
			return nodes, err
		}
		if i == 0 {
			// Bootstrap once; a restart joins the others.
			argv := s.argv
			s.argv = append(append([]string{}, argv...), "--wsrep-new-cluster")
			err = s.start(ctx)
			s.argv = argv
		} else {
			err = s.start(ctx)
		}
		if err != nil {
			return nodes, fmt.Errorf("dbserver: galera %s: %w", name, err)
		}
	}
	return nodes, nil
}

// GaleraFlags are the MariaDB server flags of Galera node name (besides
// the durable-commit ones every server gets), with provider lib: the
// cluster of members (host:port of each group listener), this node's
// own address among them (self), the provider's options and the
// address its rsync state transfer receives on. The docker driver runs
// its containers' nodes with them too.
func GaleraFlags(lib, name string, members []string, self, providerOptions, sstAddr string) []string {
	return []string{
		"--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
		// A small redo log and cache: a state transfer copies the
		// data directory, and a test's cluster is small.
		"--innodb-log-file-size=16M", "--innodb-buffer-pool-size=32M",
		"--wsrep-on=ON", "--wsrep-provider=" + lib, "--wsrep-cluster-name=lossbench",
		"--wsrep-node-name=" + name,
		"--wsrep-cluster-address=gcomm://" + strings.Join(members, ","),
		"--wsrep-node-address=" + self,
		"--wsrep-provider-options=" + providerOptions,
		"--wsrep-sst-method=rsync",
		"--wsrep-sst-receive-address=" + sstAddr,
	}
}

// ownByOSUser gives s.Dir to the OS user mariadbd runs as (when it drops
// from root to another).
func (s *Server) ownByOSUser() error {
	if os.Geteuid() != 0 || s.cfg.osUser == "" {
		return nil
	}
	u, err := user.Lookup(s.cfg.osUser)
	if err != nil {
		return fmt.Errorf("%w: no %s OS user", ErrNotInstalled, s.cfg.osUser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := makeTraversable(s.Dir); err != nil {
		return err
	}
	if err := chownTree(s.Dir, uid, gid); err != nil {
		return fmt.Errorf("dbserver: chown: %w", err)
	}
	return nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// A MariaDB DSN may name several servers, tcp(h1:3306,h2:3306,h3:3306):
// the nodes of a MariaDB Galera cluster, where every node takes writes.
// go-sql-driver/mysql dials one address; the store then connects to the
// first of them that answers and is ready, in the order given, the way
// MariaDB Connector/J's "sequential" failover mode does. Every new
// connection tries them again from the first, so a broker that lost its
// node reconnects (broker/role) to the next one, and a node that comes
// back is used again by the connections opened after it did.
//
// Ready means: the server answers and, if it is a Galera node, reports
// wsrep_ready ON (it is in the cluster's primary component and synced);
// a node cut off in a minority answers but refuses statements (error
// 1047), so it is skipped like an unreachable one.

// errNodeNotReady is a Galera node that answers but does not take
// statements; IsConnectionError counts it as a lost connection.
var errNodeNotReady = errors.New("sqlstore: galera node not ready (wsrep_ready is not ON)")

// splitMySQLAddrs finds the address list of a MariaDB DSN,
// [user[:password]@][net[(addr,addr,...)]]/dbname[?params], and returns
// the DSN with its first address only (go-sql-driver's ParseDSN would
// take "h1:1,h2:2" for a host and add a port to it) and every address,
// each with a port (3306 by default). A DSN with one address or none
// comes back as it is, with a nil list.
func splitMySQLAddrs(dsn string) (string, []string) {
	slash := strings.LastIndex(dsn, "/")
	if q := strings.Index(dsn, "?"); q >= 0 {
		slash = strings.LastIndex(dsn[:q], "/")
	}
	if slash < 0 {
		return dsn, nil
	}
	head := dsn[:slash]
	at := strings.LastIndex(head, "@")
	open := strings.Index(head[at+1:], "(")
	if open < 0 || !strings.HasSuffix(head, ")") {
		return dsn, nil
	}
	open += at + 1
	inner := head[open+1 : len(head)-1]
	if !strings.Contains(inner, ",") {
		return dsn, nil
	}
	var addrs []string
	for _, a := range strings.Split(inner, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, "3306")
		}
		addrs = append(addrs, a)
	}
	if len(addrs) < 2 {
		return dsn, nil
	}
	return head[:open+1] + addrs[0] + ")" + dsn[slash:], addrs
}

// openSQL opens the database/sql handle of dsn for dialect d: sql.Open,
// or for a MariaDB DSN with several addresses a failover connector.
func openSQL(d *dialect, dsn string) (*sql.DB, error) {
	if d.name == "mysql" {
		if one, addrs := splitMySQLAddrs(dsn); len(addrs) > 1 {
			cfg, err := mysql.ParseDSN(one)
			if err != nil {
				return nil, fmt.Errorf("sqlstore: mysql DSN: %w", err)
			}
			c, err := newMySQLFailover(cfg, addrs)
			if err != nil {
				return nil, err
			}
			return sql.OpenDB(c), nil
		}
	}
	return sql.Open(d.driver, dsn)
}

// mysqlFailover is a driver.Connector over several MariaDB servers.
type mysqlFailover struct {
	addrs []string
	conns []driver.Connector
}

func newMySQLFailover(cfg *mysql.Config, addrs []string) (*mysqlFailover, error) {
	f := &mysqlFailover{addrs: addrs}
	for _, a := range addrs {
		c := cfg.Clone()
		c.Addr = a
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: mysql DSN address %s: %w", a, err)
		}
		f.conns = append(f.conns, conn)
	}
	return f, nil
}

// Connect returns a connection to the first server that answers and is
// ready; with none, every server's error, joined.
func (f *mysqlFailover) Connect(ctx context.Context) (driver.Conn, error) {
	var errs []error
	for i, c := range f.conns {
		conn, err := c.Connect(ctx)
		if err == nil {
			if err = galeraReady(ctx, conn); err != nil {
				conn.Close()
			}
		}
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", f.addrs[i], err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("sqlstore: no MariaDB server of %s is ready: %w", strings.Join(f.addrs, ","), errors.Join(errs...))
}

func (f *mysqlFailover) Driver() driver.Driver { return mysql.MySQLDriver{} }

// galeraReady checks a new connection: nil for a server that is no
// Galera node (wsrep_on absent or OFF) or a Galera node with wsrep_ready
// ON; errNodeNotReady (wrapping the server's answer) otherwise.
func galeraReady(ctx context.Context, conn driver.Conn) error {
	on, err := showValue(ctx, conn, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
	if err != nil {
		return fmt.Errorf("%w: %w", errNodeNotReady, err)
	}
	if !strings.EqualFold(on, "ON") {
		return nil
	}
	ready, err := showValue(ctx, conn, "SHOW GLOBAL STATUS LIKE 'wsrep_ready'")
	if err != nil {
		return fmt.Errorf("%w: %w", errNodeNotReady, err)
	}
	if !strings.EqualFold(ready, "ON") {
		return fmt.Errorf("%w: wsrep_ready %q", errNodeNotReady, ready)
	}
	return nil
}

// showValue runs a SHOW ... LIKE on conn and returns the value of its
// row, "" when there is none.
func showValue(ctx context.Context, conn driver.Conn, query string) (string, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return "", errors.New("the driver's connection cannot query")
	}
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	switch err := rows.Next(dest); {
	case errors.Is(err, io.EOF):
		return "", nil
	case err != nil:
		return "", err
	}
	if len(dest) < 2 {
		return "", fmt.Errorf("%s: %d columns", query, len(dest))
	}
	switch v := dest[1].(type) {
	case []byte:
		return string(v), nil
	case string:
		return v, nil
	}
	return fmt.Sprint(dest[1]), nil
}

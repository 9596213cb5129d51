package bench

import (
	"bytes"
	"context"
	"embed"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/peers"
)

//go:embed peers/activemq-*.xml peers/activemq-log4j.properties
var activemqConf embed.FS

// ActiveMQConfig selects an ActiveMQ configuration.
type ActiveMQConfig struct {
	// Store names the embedded activemq.xml (peers/activemq-<Store>.xml):
	// "kahadb", "kahadb-nocsd" or "jdbc".
	Store string
	// JDBCURL and JDBCUser, for the jdbc store, name the PostgreSQL
	// database (jdbc:postgresql://host:port/db); no password.
	JDBCURL, JDBCUser string
}

// StartActiveMQ starts Debian's ActiveMQ Classic with ACTIVEMQ_BASE dir:
// it writes dir/conf/activemq.xml from the embedded template for c.Store
// with a STOMP connector on a free 127.0.0.1 port (and no other
// transport), runs the JVM with Debian's flags, and waits until the STOMP
// port answers a CONNECT (90 s at most). The console output is in
// dir/data/console.log and the broker's log in dir/data/activemq.log.
//
// On error the partial Peer is returned with the error so the caller can
// Stop it.
func StartActiveMQ(ctx context.Context, dir string, c ActiveMQConfig) (*Peer, error) {
	if err := PeerAvailable(PeerActiveMQ); err != nil {
		return nil, err
	}
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	stompAddr, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	conf, data, tmp, lib := filepath.Join(base, "conf"), filepath.Join(base, "data"), filepath.Join(base, "tmp"), filepath.Join(base, "lib")
	if err := mkdirs(conf, data, tmp, lib); err != nil {
		return nil, err
	}
	xmlText, err := activemqXML(c, stompAddr)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "activemq.xml"), xmlText, 0o644); err != nil {
		return nil, err
	}
	log4j, _ := activemqConf.ReadFile("peers/activemq-log4j.properties")
	if err := os.WriteFile(filepath.Join(conf, "log4j.properties"), log4j, 0o644); err != nil {
		return nil, err
	}
	if c.Store == "jdbc" {
		// ActiveMQ adds ACTIVEMQ_BASE/lib to its class path.
		link := filepath.Join(lib, "postgresql.jar")
		os.Remove(link)
		if err := os.Symlink(peers.PostgresJDBCJar, link); err != nil {
			return nil, fmt.Errorf("bench: link JDBC driver: %w", err)
		}
	}
	console := filepath.Join(data, "console.log")
	p := &Peer{
		Kind: PeerActiveMQ, STOMP: stompAddr, Dir: base,
		logs: []string{console, filepath.Join(data, "activemq.log")},
		data: []string{filepath.Join(data, "kahadb"), filepath.Join(data, "localhost"), tmp},
	}
	// The scenarios' ActiveMQ node runs the same JVM command line.
	argv := peers.ActiveMQNode{Dir: base, Data: data}.Argv()
	if p.main, err = startChild("activemq", base, console, os.Environ(), argv...); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, peerStartTimeout); err != nil {
		return p, err
	}
	return p, nil
}

// activemqXML renders the embedded activemq.xml for c.Store with its
// STOMP connector on stompAddr.
func activemqXML(c ActiveMQConfig, stompAddr string) ([]byte, error) {
	if _, err := activemqConf.ReadFile("peers/activemq-" + c.Store + ".xml"); err != nil {
		return nil, fmt.Errorf("bench: no ActiveMQ configuration %q", c.Store)
	}
	if c.Store == "jdbc" && c.JDBCURL == "" {
		return nil, fmt.Errorf("bench: ActiveMQ jdbc store needs a JDBC URL")
	}
	return renderConf(activemqConf, "peers/activemq-"+c.Store+".xml", map[string]string{
		"STOMP": xmlEscape(stompAddr), "JDBCURL": xmlEscape(c.JDBCURL), "JDBCUser": xmlEscape(c.JDBCUser),
	})
}

// xmlEscape escapes s for an XML attribute value.
func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

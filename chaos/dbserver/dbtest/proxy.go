package dbtest

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/internal/tcplink"
)

// Link is a TCP proxy (toxiproxy's toxic chains) on a loopback port it
// binds once and keeps until the test ends, through cuts: a port given
// up and bound again could be taken by another process meanwhile.
type Link struct {
	*tcplink.Link
}

// Forward starts a proxy called name in front of upstream on a free
// loopback port (Addr), closed when the test ends.
func Forward(tb testing.TB, name, upstream string) *Link {
	tb.Helper()
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	l, err := tcplink.Listen(tp, name, "127.0.0.1:0", upstream, netip.Prefix{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(l.Close)
	return &Link{l}
}

// Proxy starts a proxy called name in front of srv (Forward) and returns
// it with dsn (a database on srv) rewritten to go through it.
func Proxy(tb testing.TB, srv *dbserver.Server, dsn, name string) (*Link, string) {
	tb.Helper()
	p := Forward(tb, name, srv.Addr())
	via := strings.Replace(dsn, srv.Addr(), p.Addr(), 1)
	if via == dsn {
		tb.Fatalf("DSN %q does not name the server's address %s", dsn, srv.Addr())
	}
	return p, via
}

// Cut cuts a proxied path: "reset" closes its connections and resets new
// ones as soon as they are accepted (the port stays bound); "blackhole"
// holds every byte both ways on the open connections and on new ones,
// with no error.
func Cut(tb testing.TB, p *Link, how string) {
	tb.Helper()
	switch how {
	case "reset":
		p.Block()
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			js := `{"name":"blackhole-` + stream + `","type":"timeout","stream":"` + stream + `","attributes":{"timeout":0}}`
			if _, err := p.Toxics().AddToxicJson(strings.NewReader(js)); err != nil {
				tb.Errorf("blackhole %s: %v", stream, err)
			}
		}
	default:
		tb.Fatalf("unknown cut %q", how)
	}
}

// Restore undoes Cut: the proxy passes new connections again, or the held
// bytes flow on.
func Restore(tb testing.TB, p *Link, how string) {
	tb.Helper()
	switch how {
	case "reset":
		p.Unblock()
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			if err := p.Toxics().RemoveToxic(context.Background(), "blackhole-"+stream); err != nil {
				tb.Errorf("remove blackhole %s: %v", stream, err)
			}
		}
	default:
		tb.Fatalf("unknown cut %q", how)
	}
}

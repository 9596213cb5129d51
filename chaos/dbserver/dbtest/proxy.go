package dbtest

import (
	"context"
	"net"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/dbserver"
)

// Proxy starts a toxiproxy proxy called name in front of srv on a free
// loopback port, stopped when the test ends, and returns it with dsn (a
// database on srv) rewritten to go through it.
func Proxy(tb testing.TB, srv *dbserver.Server, dsn, name string) (*toxiproxy.Proxy, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(tp, name, listen, srv.Addr())
	if err := p.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	via := strings.Replace(dsn, srv.Addr(), p.Listen, 1)
	if via == dsn {
		tb.Fatalf("DSN %q does not name the server's address %s", dsn, srv.Addr())
	}
	return p, via
}

// Cut cuts a proxied path: "reset" stops the proxy (its connections
// close, new ones are refused); "blackhole" holds every byte both ways on
// the open connections and on new ones, with no error.
func Cut(tb testing.TB, p *toxiproxy.Proxy, how string) {
	tb.Helper()
	switch how {
	case "reset":
		p.Stop()
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			js := `{"name":"blackhole-` + stream + `","type":"timeout","stream":"` + stream + `","attributes":{"timeout":0}}`
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
				tb.Errorf("blackhole %s: %v", stream, err)
			}
		}
	default:
		tb.Fatalf("unknown cut %q", how)
	}
}

// Restore undoes Cut: the proxy starts again on its address, or the held
// bytes flow on.
func Restore(tb testing.TB, p *toxiproxy.Proxy, how string) {
	tb.Helper()
	switch how {
	case "reset":
		if err := p.Start(); err != nil {
			tb.Fatal(err)
		}
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			if err := p.Toxics.RemoveToxic(context.Background(), "blackhole-"+stream); err != nil {
				tb.Errorf("remove blackhole %s: %v", stream, err)
			}
		}
	default:
		tb.Fatalf("unknown cut %q", how)
	}
}

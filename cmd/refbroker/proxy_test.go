package main

import (
	"context"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/dbserver"
)

// proxyTo starts a toxiproxy proxy called name in front of srv, stopped
// when the test ends, and returns it with dsn (a database on srv)
// rewritten to go through it.
func proxyTo(t *testing.T, srv *dbserver.Server, dsn, name string) (*toxiproxy.Proxy, string) {
	t.Helper()
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(tp, name, freeAddr(t), srv.Addr())
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	via := strings.Replace(dsn, srv.Addr(), p.Listen, 1)
	if via == dsn {
		t.Fatalf("DSN %q does not name the server's address %s", dsn, srv.Addr())
	}
	return p, via
}

// cutDatabase cuts a proxied path: "reset" stops the proxy (its
// connections close, new ones are refused); "blackhole" holds every byte
// both ways on the open connections and on new ones, with no error.
func cutDatabase(t *testing.T, p *toxiproxy.Proxy, how string) {
	t.Helper()
	switch how {
	case "reset":
		p.Stop()
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			js := `{"name":"blackhole-` + stream + `","type":"timeout","stream":"` + stream + `","attributes":{"timeout":0}}`
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
				t.Errorf("blackhole %s: %v", stream, err)
			}
		}
	default:
		t.Fatalf("unknown cut %q", how)
	}
}

// restoreDatabase undoes cutDatabase: the proxy starts again on its
// address, or the held bytes flow on.
func restoreDatabase(t *testing.T, p *toxiproxy.Proxy, how string) {
	t.Helper()
	switch how {
	case "reset":
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			if err := p.Toxics.RemoveToxic(context.Background(), "blackhole-"+stream); err != nil {
				t.Errorf("remove blackhole %s: %v", stream, err)
			}
		}
	default:
		t.Fatalf("unknown cut %q", how)
	}
}

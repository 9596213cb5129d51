package sqlstore

import (
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestSplitMySQLAddrs(t *testing.T) {
	tests := []struct {
		dsn, one string
		addrs    []string
	}{
		{"u:p@tcp(127.0.0.1:3306)/db", "u:p@tcp(127.0.0.1:3306)/db", nil},
		{"u:p@tcp(a:1,b:2,c)/db?wsrep_sync_wait=1", "u:p@tcp(a:1)/db?wsrep_sync_wait=1", []string{"a:1", "b:2", "c:3306"}},
		{"u:p(x@tcp(a:1, b:2)/db", "u:p(x@tcp(a:1)/db", []string{"a:1", "b:2"}},
		{"u:p@tcp(a:1,b:2)/db?x=a/b", "u:p@tcp(a:1)/db?x=a/b", []string{"a:1", "b:2"}},
		{"/db", "/db", nil},
		{"nonsense", "nonsense", nil},
		{"u@tcp(,)/db", "u@tcp(,)/db", nil},
	}
	for _, tt := range tests {
		one, addrs := splitMySQLAddrs(tt.dsn)
		if one != tt.one || !slices.Equal(addrs, tt.addrs) {
			t.Errorf("splitMySQLAddrs(%q) = %q, %q; want %q, %q", tt.dsn, one, addrs, tt.one, tt.addrs)
		}
	}
}

// TestPickDialectKeepsAddrs: the DSN pickDialect rewrites (timeouts,
// interpolation) still names every server, in order.
func TestPickDialectKeepsAddrs(t *testing.T) {
	_, dsn, err := pickDialect(Options{Driver: "mysql", DSN: "u:p@tcp(127.0.0.1:1,127.0.0.2:2)/db?wsrep_sync_wait=1"})
	if err != nil {
		t.Fatal(err)
	}
	one, addrs := splitMySQLAddrs(dsn)
	if !slices.Equal(addrs, []string{"127.0.0.1:1", "127.0.0.2:2"}) {
		t.Fatalf("pickDialect gave %q: servers %q", dsn, addrs)
	}
	cfg, err := mysql.ParseDSN(one)
	if err != nil || cfg.Addr != "127.0.0.1:1" || cfg.Params["wsrep_sync_wait"] != "1" || !cfg.InterpolateParams {
		t.Fatalf("pickDialect gave %q: %+v, %v", dsn, cfg, err)
	}
}

// FuzzSplitMySQLAddrs: the DSN with the first address only is the input
// with the list cut to its first element, and a list has two or more
// addresses, each with a port.
func FuzzSplitMySQLAddrs(f *testing.F) {
	for _, s := range []string{"u:p@tcp(a:1,b:2)/db", "u@tcp(a)/db?x=(,)", "(a,b)/", "@(,x)/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		one, addrs := splitMySQLAddrs(dsn)
		if addrs == nil {
			if one != dsn {
				t.Fatalf("%q: no list, but the DSN became %q", dsn, one)
			}
			return
		}
		if len(addrs) < 2 {
			t.Fatalf("%q: a list of %d", dsn, len(addrs))
		}
		for _, a := range addrs {
			if a == "" || strings.Contains(a, ",") {
				t.Fatalf("%q: address %q", dsn, a)
			}
		}
		if !strings.Contains(one, "("+addrs[0]+")") || len(one) > len(dsn)+len(":3306") {
			t.Fatalf("%q: first-address DSN %q, list %q", dsn, one, addrs)
		}
	})
}

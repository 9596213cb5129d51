package dbserver_test

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// TestStartMovesOffTakenPort: a new server whose drawn port another
// process took before the server bound it starts on another port, and
// says so.
func TestStartMovesOffTakenPort(t *testing.T) {
	for _, kind := range []dbserver.Kind{dbserver.Postgres, dbserver.MariaDB} {
		t.Run(string(kind), func(t *testing.T) {
			if err := dbserver.Available(kind); err != nil {
				t.Skipf("%s: %v", kind, err)
			}
			held, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			taken := held.Addr().(*net.TCPAddr).Port
			var mu sync.Mutex
			picks := 0
			t.Cleanup(dbserver.SetFreePort(func(ip string) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				if picks++; picks == 1 {
					return taken, nil
				}
				return osutil.FreePort(ip)
			}))
			s := startOrSkip(t, kind)
			if s.Port == taken {
				t.Fatalf("%s on %s, the taken port is %d", kind, s.Addr(), taken)
			}
			if !strings.Contains(s.DSN(""), s.Addr()) {
				t.Fatalf("DSN %s does not name %s", s.DSN(""), s.Addr())
			}
			if err := s.CreateDatabase(t.Context(), "moved"); err != nil {
				t.Fatalf("%s on its new port: %v", kind, err)
			}
			if !osutil.SaysAddrInUse(s.LogPath(), 0) {
				t.Fatalf("%s's log does not show the first start's bind failure", kind)
			}
		})
	}
}

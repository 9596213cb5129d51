package dbserver

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestMariaDBOSUserOwnsFiles: as root, a MariaDB that runs as another OS
// user (Galera's nodes run as mysql) gets its whole folder, the init
// file it reads at start included, owned by that user; a file left to
// root (0600) stops mariadbd at start ("Can't create/write to file
// init.sql").
func TestMariaDBOSUserOwnsFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the server runs as the calling user otherwise")
	}
	if _, _, err := mariaBins(""); err != nil {
		t.Skip(err)
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		t.Skip("no mysql OS user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	// A folder mysql can reach (t.TempDir's parent is 0700).
	top, err := os.MkdirTemp("", "lossbench-osuser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "node1")
	s, err := newMariaDB(context.Background(), dir, nil, []Option{func(c *config) { c.osUser = "mysql" }})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "init.sql"), s.dataDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Sys().(*syscall.Stat_t).Uid; int(got) != uid {
			t.Errorf("%s owned by uid %d, want mysql's %d", p, got, uid)
		}
	}
}

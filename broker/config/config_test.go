package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	c, err := Parse("b.yaml", []byte(`
listen: 127.0.0.1:7000
admin: ""
store: memory
fsync: interval=5ms
max-memory: 64MiB
segment-size: 1MiB
heartbeat: {send: 1s, receive: 2s, grace: 1.5}
limits:
  max-body: 1KiB
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7000" || c.Admin != "" || c.Store != "memory" || c.Fsync != "interval=5ms" ||
		c.MaxMemory != 64<<20 || c.Heartbeat.Send != time.Second || c.Heartbeat.Grace != 1.5 ||
		c.Limits.MaxBody != 1024 || c.Prefetch != Default().Prefetch || c.SegmentSize != 1<<20 {
		t.Fatalf("got %+v", c)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown key", "listen: x\nlisen: y\n", "b.yaml:2: field lisen not found"},
		{"nested unknown key", "heartbeat:\n  sned: 1s\n", "b.yaml:2: field sned not found"},
		{"wrong type", "listen: x\nprefetch: lots\n", "b.yaml:2: cannot unmarshal"},
		{"bad size", "\nmax-memory: 12 parsecs\n", "b.yaml:2: bad size"},
		{"bad fsync", "store: journal\nfsync: sometimes\n", "b.yaml:2: fsync: \"sometimes\" is not"},
		{"bad interval", "fsync: interval=soon\n", "b.yaml:1: fsync: bad interval"},
		{"bad grace", "heartbeat:\n  send: 1s\n  grace: 0.5\n", "b.yaml:3: heartbeat.grace: must be at least 1"},
		{"syntax", "listen: [x\n", "b.yaml:"},
		{"tiny segments", "store: journal\nsegment-size: 100\n", "b.yaml:2: segment-size: 100 is outside 1KiB to 4GiB"},
		{"huge segments", "segment-size: 1TiB\n", "b.yaml:1: "},
		{"lease without jdbc", "store: journal\nlease: true\n", "b.yaml:2: lease: needs store jdbc or journaled-jdbc"},
		{"shared without journal", "store: jdbc\nshared: true\n", "b.yaml:2: shared: needs store journal"},
		{"shared and lease", "store: journal\nlease: true\nshared: true\n", "b.yaml:3: shared: and lease are two kinds"},
		{"lease margin", "store: jdbc\nlease: true\nlease-ttl: 2s\nlease-margin: 1s\n", "b.yaml:4: lease-margin: 1s must be below"},
		{"negative reconnect max", "store: jdbc\ndb-reconnect-max: -1s\n", "b.yaml:2: db-reconnect-max: must not be negative"},
		{"zero commit timeout", "store: jdbc\ndb-commit-timeout: 0s\n", "b.yaml:2: db-commit-timeout: must be positive"},
		{"negative memory wait", "max-memory-wait: -1s\n", "b.yaml:1: max-memory-wait: must not be negative"},
		{"no connections", "max-connections: 0\n", "b.yaml:1: max-connections: must be at least 1"},
		{"zero max-body", "limits:\n  max-body: 0\n", "b.yaml:2: limits.max-body: must be at least 1 byte"},
		{"max-body above max-frame", "limits:\n  max-frame: 1MiB\n  max-body: 2MiB\n", "b.yaml:3: limits.max-body: 2MiB is larger than limits.max-frame 1MiB"},
		{"reconnect not a bool", "store: jdbc\ndb-reconnect: often\n", "b.yaml:2: cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("b.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:1\nstore: memory\nprefetch: 5\n"), 0o644)
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"--config", file, "--listen", "127.0.0.1:2", "--repair", "--max-body=2MiB", "--heartbeat-send=0", "--max-memory-wait=0"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(f.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:2" || c.Store != "memory" || c.Prefetch != 5 || !c.Repair || c.Limits.MaxBody != 2<<20 ||
		c.Heartbeat.Send != 0 {
		t.Fatalf("got %+v", c)
	}
	o := c.ServerOptions("v1", nil)
	if o.HeartbeatSend >= 0 || o.Limits.MaxBody != 2<<20 || o.Prefetch != 5 || o.MemoryWait >= 0 {
		t.Fatalf("server options %+v", o)
	}
}

func TestLeaseConfig(t *testing.T) {
	c, err := Parse("b.yaml", []byte("store: jdbc\nlease: true\nlease-owner: a\nlease-renew: 200ms\nlease-ttl: 2s\nlease-margin: 500ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Lease || c.LeaseOwner != "a" || c.LeaseRenew != 200*time.Millisecond || c.LeaseTTL != 2*time.Second || c.LeaseMargin != 500*time.Millisecond {
		t.Fatalf("got %+v", c)
	}
	d := Default()
	if d.Lease || d.LeaseRenew != time.Second || d.LeaseTTL != 5*time.Second || d.LeaseMargin != time.Second {
		t.Fatalf("defaults %+v", d)
	}
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"--store", "journaled-jdbc", "--lease", "--lease-owner", "b", "--lease-ttl", "3s"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(&d); err != nil {
		t.Fatal(err)
	}
	if !d.Lease || d.LeaseOwner != "b" || d.LeaseTTL != 3*time.Second {
		t.Fatalf("flags %+v", d)
	}
}

// TestDBReconnectConfig: reconnecting is on by default with no limit;
// the YAML keys and the flags set it, the flags over the file.
func TestDBReconnectConfig(t *testing.T) {
	d := Default()
	if !d.DBReconnect || d.DBReconnectMax != 0 || d.DBCommitTimeout != 30*time.Second {
		t.Fatalf("defaults: db-reconnect %v, db-reconnect-max %v, db-commit-timeout %v; want true, 0, 30s",
			d.DBReconnect, d.DBReconnectMax, d.DBCommitTimeout)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("store: jdbc\ndb-reconnect: false\ndb-reconnect-max: 30s\ndb-commit-timeout: 4s\n"), 0o644)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.DBReconnect || c.DBReconnectMax != 30*time.Second || c.DBCommitTimeout != 4*time.Second {
		t.Fatalf("file: %+v", c)
	}
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"--db-reconnect", "--db-reconnect-max", "2m"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if !c.DBReconnect || c.DBReconnectMax != 2*time.Minute {
		t.Fatalf("flags over the file: %+v", c)
	}
	fs = flag.NewFlagSet("refbroker", flag.ContinueOnError)
	f = RegisterFlags(fs)
	if err := fs.Parse([]string{"--db-reconnect=false"}); err != nil {
		t.Fatal(err)
	}
	c = Default()
	if err := f.Apply(&c); err != nil || c.DBReconnect {
		t.Fatalf("--db-reconnect=false: %v, %+v", err, c)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--prefetch=x"}, {"--fsync=maybe"}, {"--max-frame=huge"}, {"--connect-timeout=5"},
		{"--lease"}, {"--store=memory", "--lease"}, {"--store=jdbc", "--lease", "--lease-ttl=1s"}, {"--lease-renew=0"},
		{"--db-reconnect=maybe"}, {"--db-reconnect-max=-1s"}, {"--db-reconnect-max=5"}, {"--db-commit-timeout=0s"}, {"--db-commit-timeout=-2s"},
		{"--max-body=0"}, {"--max-body=32MiB", "--max-frame=1MiB"}} {
		fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
		f := RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c := Default()
		if err := f.Apply(&c); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
}

// TestMaxBodyRaisesDefaultFrame: a max-body above the default raises a
// max-frame left at its default, from a flag or a file.
func TestMaxBodyRaisesDefaultFrame(t *testing.T) {
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"--max-body=64MiB"}); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := f.Apply(&c); err != nil {
		t.Fatal(err)
	}
	d := Default().Limits
	if want := 64<<20 + d.MaxFrame - d.MaxBody; c.Limits.MaxFrame != want {
		t.Fatalf("max-frame %v, want %v", c.Limits.MaxFrame, want)
	}
	c, err := Parse("b.yaml", []byte("limits: {max-body: 20MiB}\n"))
	if err != nil || c.Limits.MaxFrame != 20<<20+d.MaxFrame-d.MaxBody {
		t.Fatalf("from a file: max-frame %v, %v", c.Limits.MaxFrame, err)
	}
}

func TestHelpDocumentsEveryField(t *testing.T) {
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	RegisterFlags(fs)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.PrintDefaults()
	for _, name := range []string{"config", "listen", "admin", "store", "db-driver", "dsn", "checkpoint-interval", "checkpoint-bytes",
		"lease", "shared", "lease-owner", "lease-renew", "lease-ttl", "lease-margin", "db-reconnect", "db-reconnect-max", "db-commit-timeout", "write-policy", "min-databases", "data", "fsync", "segment-size", "repair", "login", "passcode", "admin-token",
		"max-memory", "max-memory-wait", "max-connections", "dedup-window", "prefetch", "heartbeat-send", "heartbeat-receive", "heartbeat-grace",
		"connect-timeout", "max-frame", "max-headers", "max-header-line", "max-body", "frame-timeout", "max-subscriptions", "max-queues",
		"max-redeliveries", "max-login-failures"} {
		if !strings.Contains(out.String(), "-"+name) {
			t.Errorf("help lacks -%s", name)
		}
	}
	if !strings.Contains(out.String(), `127.0.0.1:61613`) {
		t.Error("help lacks the listen default")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"0": 0, "512": 512, "4KiB": 4096, "4K": 4096, "16MiB": 16 << 20, "1 GB": 1 << 30} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%q: got %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1", "1.5M", "12 parsecs"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if s := ByteSize(16 << 20).String(); s != "16MiB" {
		t.Error(s)
	}
}

// TestExposed: a STOMP or admin address reachable from elsewhere without
// credentials gets a warning; loopback, or credentials, none.
func TestExposed(t *testing.T) {
	for _, tt := range []struct {
		listen, admin, login, token string
		want                        []string
	}{
		{"127.0.0.1:61613", "127.0.0.1:8161", "", "", nil},
		{"[::1]:61613", "localhost:8161", "", "", nil},
		{"0.0.0.0:61613", "", "", "", []string{"--listen 0.0.0.0:61613 is not a loopback address and no --login"}},
		{":61613", ":8161", "", "", []string{"--listen :61613 is not", "--admin :8161 is not a loopback address and no --admin-token"}},
		{"10.1.2.3:61613", "broker.example:8161", "u", "", []string{"--admin broker.example:8161"}},
		{"[::]:61613", "0.0.0.0:8161", "u", "t", nil},
	} {
		c := Default()
		c.Listen, c.Admin, c.Login, c.AdminToken = tt.listen, tt.admin, tt.login, tt.token
		got := c.Exposed()
		if len(got) != len(tt.want) {
			t.Errorf("%+v: warnings %q, want %d", tt, got, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%+v: warning %q lacks %q", tt, got[i], w)
			}
		}
	}
}

func TestReplicatedJDBCFlags(t *testing.T) {
	apply := func(args ...string) (Config, error) {
		fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
		f := RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c := Default()
		return c, f.Apply(&c)
	}
	c, err := apply("--store", "jdbc", "--dsn", "a", "--db-driver", "sqlite", "--dsn", "b", "--db-driver", "postgres", "--write-policy", "first", "--min-databases", "2")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DSNs) != 2 || c.DSNs[1] != "b" || len(c.DBDrivers) != 2 || c.DBDrivers[1] != "postgres" || c.DSN != "" || c.WritePolicy != "first" || c.MinDatabases != 2 {
		t.Fatalf("got dsns %q drivers %q dsn %q policy %q min %d", c.DSNs, c.DBDrivers, c.DSN, c.WritePolicy, c.MinDatabases)
	}
	c, err = apply("--store", "jdbc", "--dsn", "a", "--dsn", "b", "--db-driver", "postgres")
	if err != nil || c.DBDriver != "postgres" || len(c.DBDrivers) != 0 {
		t.Fatalf("one driver for all: %v, %+v", err, c)
	}
	for _, bad := range [][]string{
		{"--store", "journal", "--dsn", "a", "--dsn", "b"},
		{"--store", "jdbc", "--dsn", "a", "--dsn", "b", "--db-driver", "sqlite", "--db-driver", "sqlite", "--db-driver", "sqlite"},
		{"--store", "jdbc", "--dsn", "a", "--dsn", "b", "--write-policy", "some"},
		{"--store", "jdbc", "--dsn", "a", "--dsn", "b", "--min-databases", "3"},
		{"--store", "jdbc", "--dsn", "a", "--dsn", "b", "--lease"},
		{"--store", "jdbc", "--dsn", "a", "--db-driver", "sqlite", "--db-driver", "postgres"},
	} {
		if _, err := apply(bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Parse("c.yaml", []byte("store: jdbc\ndsns: [a]\n")); err == nil || !strings.Contains(err.Error(), "c.yaml:2") {
		t.Errorf("one dsns entry: %v, want an error at c.yaml:2", err)
	}
}

package peers

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJDBCPostgres(t *testing.T) {
	u, user, err := JDBCPostgres("postgres://postgres@127.0.1.250:16390/activemq_x?sslmode=disable")
	if err != nil || u != "jdbc:postgresql://127.0.1.250:16390/activemq_x" || user != "postgres" {
		t.Fatalf("got %q %q %v", u, user, err)
	}
	for _, bad := range []string{
		"", "mysql://root@127.0.0.1:3306/x", "postgres://postgres@127.0.0.1/x", "postgres://postgres@127.0.0.1:5432/",
		"postgres://postgres:secret@127.0.0.1:5432/x", "postgres://postgres@127.0.0.1:5432/a/b", "%zz",
	} {
		if u, _, err := JDBCPostgres(bad); err == nil {
			t.Errorf("%q: no error (got %q)", bad, u)
		}
	}
}

// FuzzJDBCPostgres: any input either fails or gives a JDBC URL of the
// same host and port with no XML-breaking characters left unescaped
// after xmlEscape, and never panics.
func FuzzJDBCPostgres(f *testing.F) {
	f.Add("postgres://postgres@127.0.0.1:5432/db?sslmode=disable")
	f.Add("postgresql://u@[::1]:1/d")
	f.Fuzz(func(t *testing.T, dsn string) {
		u, _, err := JDBCPostgres(dsn)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "jdbc:postgresql://") {
			t.Fatalf("%q -> %q", dsn, u)
		}
		if e := xmlEscape(u); strings.ContainsAny(e, "<>\"") {
			t.Fatalf("%q escapes to %q", u, e)
		}
	})
}

// TestActiveMQJDBCConfig: with a JDBC URL the configuration is well-formed
// XML with the JDBC store on that database and no KahaDB, and the JDBC
// driver is linked into ACTIVEMQ_BASE/lib (on a second Write too).
func TestActiveMQJDBCConfig(t *testing.T) {
	dir := t.TempDir()
	a := ActiveMQNode{Listen: "127.0.0.1:40000", Dir: dir, Data: filepath.Join(dir, "data"),
		JDBCURL: "jdbc:postgresql://127.0.0.1:5432/a&b", JDBCUser: "postgres"}
	for i := 0; i < 2; i++ {
		if err := a.Write(); err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "conf", "activemq.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, b)
		}
	}
	s := string(b)
	for _, want := range []string{`<jdbcPersistenceAdapter dataSource="#postgres-ds"`, `value="jdbc:postgresql://127.0.0.1:5432/a&amp;b"`, `uri="stomp://127.0.0.1:40000"`} {
		if !strings.Contains(s, want) {
			t.Errorf("activemq.xml lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "<kahaDB") {
		t.Errorf("activemq.xml has KahaDB beside JDBC:\n%s", s)
	}
	if l, err := os.Readlink(filepath.Join(dir, "lib", "postgresql.jar")); err != nil || l != PostgresJDBCJar {
		t.Errorf("lib/postgresql.jar -> %q, %v", l, err)
	}
	a.JDBCURL = ""
	if err := a.Write(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "conf", "activemq.xml")); !strings.Contains(string(b), `journalDiskSyncStrategy="always"`) {
		t.Errorf("without JDBC: want KahaDB, always:\n%s", b)
	}
}

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMirroredJournal runs refbroker with two --data directories: /status
// shows both copies healthy and /metrics counts them; with the second
// copy's disk replaced (emptied) it recovers from the first, says so,
// rebuilds the second online and loses nothing; alone, the rebuilt copy
// is a whole journal.
func TestMirroredJournal(t *testing.T) {
	d0, d1 := t.TempDir(), t.TempDir()
	b := startAdmin(t, "m", "--store", "journal", "--data", d0, "--data", d1)
	waitStomp(t, b)
	sendPersistent(t, b.addr, "m", 20)
	st := b.status(t)
	if len(st.Mirrors) != 2 || st.Mirrors[0].State != "healthy" || st.Mirrors[1].State != "healthy" {
		t.Fatalf("/status mirrors %+v, want two healthy", st.Mirrors)
	}
	if m := metrics(t, b.admin); !strings.Contains(m, "refbroker_journal_mirrors_healthy 2") || !strings.Contains(m, "refbroker_journal_mirrors_total 2") {
		t.Fatalf("/metrics lacks the mirror counts")
	}
	b.stop()

	// The second disk replaced by a blank one.
	if err := os.RemoveAll(filepath.Join(d1, "journal")); err != nil {
		t.Fatal(err)
	}
	b = startAdmin(t, "m", "--store", "journal", "--data", d0, "--data", d1)
	waitStomp(t, b)
	deadline := time.Now().Add(time.Minute)
	for {
		st := b.status(t)
		if len(st.Mirrors) == 2 && st.Mirrors[1].State == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second copy not rebuilt: %+v", st.Mirrors)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := drain(t, b.addr); len(got) != 20 {
		t.Fatalf("recovered %d of 20 acknowledged messages", len(got))
	}
	sendPersistent(t, b.addr, "n", 5)
	b.stop()
	if out := b.stderr.String(); !strings.Contains(out, "recovering from "+filepath.Join(d0, "journal")) || !strings.Contains(out, "rebuilt") {
		t.Fatalf("log does not say which copy was chosen and that the other was rebuilt:\n%s", out)
	}
	// The rebuilt copy alone holds what is left.
	p := start(t, "--store", "journal", "--data", d1)
	if got := drain(t, p.addr); len(got) != 5 {
		t.Fatalf("the rebuilt copy alone holds %d of the 5 messages left", len(got))
	}
	p.stop()
}

// waitStomp waits until the broker b accepts STOMP connections.
func waitStomp(t *testing.T, b *leased) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !b.stompOpen() {
		if time.Now().After(deadline) {
			t.Fatalf("no STOMP listener after 30s:\n%s", b.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func metrics(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

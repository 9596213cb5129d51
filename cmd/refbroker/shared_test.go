package main

import (
	"strings"
	"testing"
)

// These tests run two or three real refbrokers with --shared on one data
// directory.

// sharedDir returns the flags of brokers sharing a fresh data directory.
func sharedDir(t *testing.T) []string {
	return []string{"--shared", "--store", "journal", "--data", t.TempDir()}
}

// TestSharedKillMaster: kill -9 of the master mid-load: the standby takes
// over after about the lease TTL and holds every receipted message.
func TestSharedKillMaster(t *testing.T) { testKillMaster(t, "shared", sharedDir(t)) }

// TestSharedSIGTERMHandsOver: SIGTERM releases the lease file, so a
// standby takes over at once instead of waiting out the TTL.
func TestSharedSIGTERMHandsOver(t *testing.T) { testSIGTERMHandsOver(t, sharedDir(t)) }

// TestSharedPausedMaster: SIGSTOP of the master past its lease. The
// standby takes the lease after the TTL, then waits for the journal,
// whose directory lock the paused process still holds. On SIGCONT the
// ex-master receipts nothing (a SEND that reached it meanwhile gets an
// ERROR), exits 1 naming the lost lease, and the new master serves every
// message receipted before the pause.
func TestSharedPausedMaster(t *testing.T) { testPausedMaster(t, "shared", sharedDir(t)) }

// TestSharedNeedsJournal: --shared with a store that does not live in the
// data directory is a configuration error.
func TestSharedNeedsJournal(t *testing.T) {
	p := launch(t, "--shared", "--store", "jdbc", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin=")
	if code := p.exitCode(); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, p.stderr)
	}
	if out := p.stderr.String(); !strings.Contains(out, "shared: needs store journal") {
		t.Fatalf("stderr does not explain:\n%s", out)
	}
}

package runner

import (
	"testing"
	"time"
)

func TestWaitBounded(t *testing.T) {
	done := make(chan struct{})
	close(done)
	if !waitBounded(done, time.Hour) {
		t.Fatal("a closed channel did not count as done")
	}
	never := make(chan struct{})
	start := time.Now()
	if waitBounded(never, 20*time.Millisecond) {
		t.Fatal("a channel nobody closes counted as done")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("gave up before the bound")
	}
}

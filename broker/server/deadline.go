package server

import (
	"io"
	"net"
	"sync"
	"time"
)

// deadlineReader keeps two read deadlines on a connection. The idle one
// is refreshed as data arrives, so a client is dropped only after timeout
// of silence (the heart-beat contract). The frame one is set when a
// frame's first byte arrives and is not refreshed, so a frame must arrive
// whole within frameTimeout however slowly its bytes trickle in (heart-beats
// only prove the client is alive). It also lets Shutdown stop reads.
type deadlineReader struct {
	nc           net.Conn
	frameTimeout time.Duration // 0 until CONNECTED: the connect timeout rules

	mu      sync.Mutex
	timeout time.Duration
	set     time.Time // when the idle deadline was last refreshed
	idleBy  time.Time // zero: no idle deadline
	frameBy time.Time // zero: no frame under way
	applied time.Time // the deadline last set on nc
	stopped bool
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return 0, io.EOF
	}
	now := time.Now()
	if d.timeout > 0 && now.Sub(d.set) > d.timeout/4 {
		d.set, d.idleBy = now, now.Add(d.timeout)
	}
	want := d.idleBy
	if !d.frameBy.IsZero() && (want.IsZero() || d.frameBy.Before(want)) {
		want = d.frameBy
	}
	if !want.Equal(d.applied) {
		d.nc.SetReadDeadline(want)
		d.applied = want
	}
	d.mu.Unlock()
	n, err := d.nc.Read(p)
	if n > 0 && d.frameTimeout > 0 {
		d.frameStarted()
	}
	return n, err
}

// frameStarted starts the frame deadline unless a frame is under way.
func (d *deadlineReader) frameStarted() {
	if d.frameTimeout <= 0 {
		return
	}
	d.mu.Lock()
	if d.frameBy.IsZero() {
		d.frameBy = time.Now().Add(d.frameTimeout)
	}
	d.mu.Unlock()
}

// frameDone ends the frame deadline: a whole frame (or a heart-beat) was
// read.
func (d *deadlineReader) frameDone() {
	d.mu.Lock()
	d.frameBy = time.Time{}
	d.mu.Unlock()
}

// frameExpired reports whether a read timed out on the frame deadline.
func (d *deadlineReader) frameExpired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.frameBy.IsZero() && !time.Now().Before(d.frameBy)
}

func (d *deadlineReader) setTimeout(t time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timeout, d.set, d.idleBy = t, time.Time{}, time.Time{}
	if t <= 0 {
		d.nc.SetReadDeadline(time.Time{})
		d.applied = time.Time{}
	}
}

func (d *deadlineReader) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.applied = time.Unix(1, 0)
	d.nc.SetReadDeadline(d.applied)
}

func (d *deadlineReader) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

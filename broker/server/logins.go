package server

import (
	"net"
	"sync"
	"time"
)

// loginWindow is the period over which failed logins are counted.
const loginWindow = time.Minute

// loginThrottle counts failed logins per source address in fixed windows
// of loginWindow. Past max failures in a window, the address's CONNECTs
// are refused without checking their credentials (so guessing stops
// paying) and without a log line each: one line says the address is
// throttled, and one, at its first event after the window, how many
// CONNECTs were refused.
type loginThrottle struct {
	max  int // 0: no throttling
	now  func() time.Time
	logf func(string, ...any)

	mu    sync.Mutex
	addrs map[string]*loginFailures
}

type loginFailures struct {
	since   time.Time // start of the window
	failed  int
	refused int
}

func newLoginThrottle(max int, logf func(string, ...any)) *loginThrottle {
	return &loginThrottle{max: max, now: time.Now, logf: logf, addrs: make(map[string]*loginFailures)}
}

func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// current returns host's failures in the current window, ending an old
// window (and reporting what it refused); caller holds t.mu.
func (t *loginThrottle) current(host string, now time.Time) *loginFailures {
	f := t.addrs[host]
	if f != nil && now.Sub(f.since) >= loginWindow {
		if f.refused > 0 {
			t.logf("login throttle: %d CONNECTs from %s refused unchecked in the last window", f.refused, host)
		}
		f = nil
	}
	if f == nil {
		if len(t.addrs) >= 4096 {
			for h, o := range t.addrs {
				if now.Sub(o.since) >= loginWindow {
					delete(t.addrs, h)
				}
			}
		}
		f = &loginFailures{since: now}
		t.addrs[host] = f
	}
	return f
}

// allow reports whether a CONNECT from remote may have its credentials
// checked.
func (t *loginThrottle) allow(remote string) bool {
	if t.max <= 0 {
		return true
	}
	host := hostOf(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.addrs[host] == nil {
		return true
	}
	f := t.current(host, t.now())
	if f.failed < t.max {
		return true
	}
	f.refused++
	return false
}

// failed records a failed login from remote; it reports whether it should
// be logged (the ones up to the limit are).
func (t *loginThrottle) failed(remote string) bool {
	if t.max <= 0 {
		return true
	}
	host := hostOf(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(host, t.now())
	f.failed++
	if f.failed == t.max {
		t.logf("login throttle: %d failed logins from %s within %v; its CONNECTs are refused unchecked until %s",
			f.failed, host, loginWindow, f.since.Add(loginWindow).Format(time.TimeOnly))
	}
	return f.failed <= t.max
}

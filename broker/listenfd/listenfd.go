// Package listenfd lets a broker serve on TCP sockets its parent bound and
// handed down as inherited file descriptors ("--listen fd:3"), so that the
// address is held from before the broker starts until after its last
// restart: no other process can take the port between the parent drawing
// it and the broker binding it, and a restarted broker gets the very same
// socket.
//
// The parent binds without listening (Bind) and keeps its copy. A socket
// that is bound but not listening refuses connections (RST), exactly like
// an address nobody listens on, so:
//
//   - the broker listens only when it serves (Socket.Listen): a standby
//     of a master/slave pair, which must not take clients, leaves it
//     bound and clients are refused until it takes over; they are not
//     left waiting in a backlog for a takeover that may never come;
//   - closing the listener Listen returned stops listening (shutdown(2)
//     with SHUT_RD, which Linux turns into "listen no more" on a listening
//     socket, resetting what waits in its backlog), so a broker that stops
//     serving (reconnecting to its database) refuses clients as if it had
//     closed its own socket;
//   - the parent calls Stop on its copy once the broker process has
//     exited: a killed broker's socket, still open through the parent,
//     would otherwise keep completing handshakes into a backlog nobody
//     accepts, and its clients would hang instead of seeing an error.
//     Connections that arrived between the death and Stop are reset.
//
// The socket is bound to an explicit port without SO_REUSEADDR, so that
// the kernel keeps the port for it while it does not listen and refuses
// it to any other bind; Listen sets SO_REUSEADDR just before listen(2)
// (so that the connections of an earlier run in TIME_WAIT do not stop a
// restart), and Stop clears it again.
//
// Only Linux stops a listening socket on shutdown(2); elsewhere Open
// fails and a broker binds its address itself.
package listenfd

import (
	"fmt"
	"strconv"
	"strings"
)

// Prefix starts an address that names an inherited file descriptor:
// "fd:3".
const Prefix = "fd:"

// Parse returns the descriptor an "fd:N" address names; ok is false for
// any other address (host:port), err set for a malformed fd: address.
func Parse(addr string) (fd int, ok bool, err error) {
	s, found := strings.CutPrefix(addr, Prefix)
	if !found {
		return 0, false, nil
	}
	fd, err = strconv.Atoi(s)
	if err != nil || fd < 3 {
		return 0, true, fmt.Errorf("listenfd: %q: want fd:N with N an inherited descriptor, 3 or more", addr)
	}
	return fd, true, nil
}

// Addr is the address that names descriptor fd: "fd:3".
func Addr(fd int) string { return Prefix + strconv.Itoa(fd) }

package dbserver

import (
	"context"
	"strconv"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// freePort picks the port of a server started without WithPort. The
// server binds it only when it starts, so another process on the machine
// can take it first: see startNew. A variable so that a test can hand out
// a taken port.
var freePort = osutil.FreePort

// portRetries bounds the starts of a new server on another port after it
// found its port taken.
const portRetries = 3

// startNew is start for a server's first start. When its port was drawn
// free (no WithPort: nobody was told it yet) and the server exits saying
// the port is taken, it draws another, logs it and starts again, at most
// portRetries times. Restarts keep the port: its DSN is out by then.
func (s *Server) startNew(ctx context.Context) error {
	for retry := 1; ; retry++ {
		offset := osutil.Size(s.logPath)
		err := s.start(ctx)
		if err == nil || s.cfg.port != 0 || retry > portRetries || s.Running() || !osutil.SaysAddrInUse(s.logPath, offset) {
			return err
		}
		port, perr := freePort("127.0.0.1")
		if perr != nil {
			return err
		}
		s.logfn("dbserver: %s port %d taken (address already in use); starting again on %d", s.Kind, s.Port, port)
		s.movePort(port)
	}
}

// movePort makes the server listen on port: its Port, DSN and command
// line (postgres -p N, mariadbd --port=N).
func (s *Server) movePort(port int) {
	old, now := strconv.Itoa(s.Port), strconv.Itoa(port)
	for i, a := range s.argv {
		switch {
		case a == "--port="+old:
			s.argv[i] = "--port=" + now
		case a == old && i > 0 && s.argv[i-1] == "-p":
			s.argv[i] = now
		}
	}
	s.Port = port
}

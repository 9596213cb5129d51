package protocoltest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Server is a real broker process a protocol's tests start, kill and
// start again on the same configuration and data (Target's Kill and
// Restart).
type Server struct {
	// Name names the broker in a failure ("nats-server").
	Name string
	// Argv is its command line; Env is added to the test's environment.
	Argv, Env []string
	// Log collects its output, appended across starts.
	Log string
	// Ready reports whether the started broker serves; Start waits up
	// to Within for it.
	Ready  func() bool
	Within time.Duration

	cmd *exec.Cmd
}

// Start starts the broker in a process group of its own (killed with
// the test's process) and waits until it is ready.
func (s *Server) Start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command(s.Argv[0], s.Argv[1:]...)
	s.cmd.Env = append(os.Environ(), s.Env...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(s.Within)
	for !s.Ready() {
		if time.Now().After(end) {
			b, _ := os.ReadFile(s.Log)
			t.Fatalf("%s not ready after %v:\n%s", s.Name, s.Within, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill kills the broker's process group (the broker and any helper it
// started) with SIGKILL and waits for it; nothing when it is not running.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Package osutil holds the small process helpers the harness's drivers,
// database servers and bench share: picking a free loopback port and
// quoting the end of a log file in an error message.
package osutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
)

// FreePort asks the kernel for a free TCP port on ip. Another process may
// take it before it is bound; on loopback addresses of our own that is
// unlikely, and the program that loses the race fails with its own message.
func FreePort(ip string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port: cannot bind %s: %w (all of 127.0.0.0/8 must be loopback)", ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as host:port.
func FreeAddr(ip string) (string, error) {
	port, err := FreePort(ip)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(ip, fmt.Sprint(port)), nil
}

// Tail returns the last lines of the file at path, indented two spaces,
// for an error message; "(no log: …)" when it cannot be read.
func Tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	parts := bytes.Split(b, []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return "  " + string(bytes.Join(parts, []byte("\n  ")))
}

// Package freeport picks a TCP port for a program that binds it later
// (a child broker, a database server, a standby that listens only once it
// is master).
//
// A port from listening on port 0 and closing is in the kernel's
// ephemeral range (net.ipv4.ip_local_port_range): until the program binds
// it, any connect() or bind to port 0 on the machine may be handed the
// same port, and on a loaded machine running many tests one is, giving
// "bind: address already in use". Port draws a port below that range
// instead: the kernel never hands such a port out by itself, so only an
// explicit bind to that very port can take it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port drawn: well above the well-known and
// registered ports of common local services.
const lowest = 10000

var (
	mu    sync.Mutex
	given = make(map[string]bool) // ip:port handed out by this process
)

// Port returns a TCP port on ip that binds now, drawn at random below the
// ephemeral range and never the same twice in one process. Where that
// range leaves too few ports below it, Port falls back to one the kernel
// picks.
func Port(ip string) (int, error) { return PortOn(ip) }

// PortOn is Port for a port that binds now on every address of ips (one
// or more), each of which then has it as given: a port that proxies on
// several addresses listen on.
func PortOn(ips ...string) (int, error) {
	lo, hi := lowest, ephemeralLow()-1
	if hi-lo < 1000 {
		return kernelPort(ips)
	}
	mu.Lock()
	defer mu.Unlock()
	var err error
draw:
	for range 200 {
		port := lo + rand.IntN(hi-lo+1)
		for _, ip := range ips {
			if given[net.JoinHostPort(ip, strconv.Itoa(port))] {
				continue draw
			}
		}
		if err = bindsOn(ips, port); err != nil {
			continue
		}
		for _, ip := range ips {
			given[net.JoinHostPort(ip, strconv.Itoa(port))] = true
		}
		return port, nil
	}
	return 0, fmt.Errorf("free port: no port in %d-%d binds on %s: %w (all of 127.0.0.0/8 must be loopback)", lo, hi, strings.Join(ips, ", "), err)
}

// bindsOn is nil when port binds now on every address of ips.
func bindsOn(ips []string, port int) error {
	for _, ip := range ips {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		ln.Close()
	}
	return nil
}

// Addr is Port as host:port.
func Addr(ip string) (string, error) {
	port, err := Port(ip)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(ip, strconv.Itoa(port)), nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// (Linux's default) when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// kernelPort is a port the kernel picks on ips[0], when it binds on the
// others too: free now, but in the ephemeral range.
func kernelPort(ips []string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
	if err != nil {
		return 0, fmt.Errorf("free port: cannot bind %s: %w (all of 127.0.0.0/8 must be loopback)", ips[0], err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := bindsOn(ips[1:], port); err != nil {
		return 0, fmt.Errorf("free port: port %d of %s: %w", port, ips[0], err)
	}
	return port, nil
}

package main

import (
	"fmt"
	"net"

	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/listenfd"
	"github.com/lossbench/lossbench/broker/replication"
)

// sockets are the inherited sockets the addresses of a run name (fd:N,
// broker/listenfd), opened once at start.
type sockets map[string]*listenfd.Socket

// openSockets opens the inherited socket of each of addrs that names one
// (flag: "--listen fd:3"); the other addresses are bound when listened on.
func openSockets(addrs map[string]string) (sockets, error) {
	s := sockets{}
	for flag, addr := range addrs {
		fd, ok, err := listenfd.Parse(addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		if !ok {
			continue
		}
		if _, dup := s[addr]; dup {
			return nil, fmt.Errorf("%s %s: the same socket is named twice", flag, addr)
		}
		if s[addr], err = listenfd.Open(fd); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	return s, nil
}

// listen listens on addr: its inherited socket, or a new one. Closing
// the listener of an inherited socket stops it listening (connections are
// refused) and keeps it for the next listen.
func (s sockets) listen(addr string) (net.Listener, error) {
	if sock := s[addr]; sock != nil {
		return sock.Listen()
	}
	return net.Listen("tcp", addr)
}

// addr is the address addr listens on: an inherited socket's own.
func (s sockets) addr(addr string) string {
	if sock := s[addr]; sock != nil {
		return sock.Addr().String()
	}
	return addr
}

// resolve opens cfg's inherited sockets and fills in what their addresses
// stood for: the default lease owner (<hostname>/<listen address>) and
// the copy of cfg whose addresses the exposure warnings check.
func resolve(cfg *config.Config) (sockets, config.Config, error) {
	socks, err := openSockets(map[string]string{"--listen": cfg.Listen, "--admin": cfg.Admin, "--replication-listen": cfg.ReplicationListen})
	if err != nil {
		return nil, *cfg, err
	}
	if cfg.LeaseOwner == "" && socks[cfg.Listen] != nil {
		cfg.LeaseOwner = defaultOwner(socks.addr(cfg.Listen))
	}
	shown := *cfg
	shown.Listen, shown.Admin, shown.ReplicationListen = socks.addr(cfg.Listen), socks.addr(cfg.Admin), socks.addr(cfg.ReplicationListen)
	return socks, shown, nil
}

// transport is replication over TCP whose listener may be inherited.
type transport struct {
	replication.TCP
	socks sockets
}

func (t transport) Listen(addr string) (net.Listener, error) { return t.socks.listen(addr) }

package replication

import "sort"

// Status is the node as /status's replication shows it.
type Status struct {
	ID    string `json:"id"`
	Role  string `json:"role"` // "master" or "replica"
	Epoch uint64 `json:"epoch"`
	// Complete is false while a resync has not finished.
	Complete    bool   `json:"complete"`
	Ack         string `json:"replica_ack"`
	MinReplicas int    `json:"min_replicas"`
	// As a master: its LSN (batches streamed this epoch), the in-sync
	// replicas, and each peer.
	LSN    uint64       `json:"lsn"`
	InSync int          `json:"in_sync"`
	Peers  []PeerStatus `json:"peers"`
	// As a replica: its master and the LSNs received and applied.
	Master   string `json:"master,omitempty"`
	Received uint64 `json:"received_lsn,omitempty"`
	Applied  uint64 `json:"applied_lsn,omitempty"`
}

// PeerStatus is one replica as its master sees it.
type PeerStatus struct {
	Addr       string `json:"addr"`
	ID         string `json:"id,omitempty"`
	Connected  bool   `json:"connected"`
	InSync     bool   `json:"in_sync"`
	Acked      uint64 `json:"acked_lsn"`
	LagRecords uint64 `json:"lag_records"`
	LagBytes   int64  `json:"lag_bytes"`
	// Resync is how it joined: "full" (a snapshot of the master's store)
	// or "tail" (resumed from its position); ResyncBytes is how many
	// bytes of frames that took.
	Resync      string `json:"resync,omitempty"`
	ResyncBytes int64  `json:"resync_bytes"`
}

// Status returns the node's replication state.
func (n *Node) Status() Status {
	n.mu.Lock()
	st := Status{ID: n.o.ID, Role: "replica", Epoch: n.epoch, Complete: n.complete,
		Ack: n.o.Ack.String(), MinReplicas: n.o.MinReplicas, Master: n.masterID,
		Received: n.received, Applied: n.applied}
	m := n.m
	if n.master {
		st.Role, st.Master = "master", n.o.ID
	}
	n.mu.Unlock()
	st.Peers = []PeerStatus{}
	if m == nil {
		return st
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st.LSN = m.lsn
	for _, addr := range n.o.Peers {
		p := PeerStatus{Addr: addr}
		if l := m.links[addr]; l != nil && !l.dead {
			p.ID, p.Connected, p.InSync, p.Acked = l.id, true, l.inSync, l.acked
			p.LagRecords, p.LagBytes = m.lsn-l.acked, l.queued
			p.Resync, p.ResyncBytes = l.resync, l.copied
			if l.inSync {
				st.InSync++
			}
		} else {
			p.LagRecords = m.lsn
		}
		st.Peers = append(st.Peers, p)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Addr < st.Peers[j].Addr })
	return st
}

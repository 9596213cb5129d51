package lease

import (
	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/store"
)

// Guarded is a store that acknowledges writes only while its lease is
// held (role.Guarded).
type Guarded = role.Guarded

// Guard wraps s so that nothing is acknowledged without l (role.Guard).
// For a sqlstore also set Options.Fence to l.Fence: Guard checks the local
// clock, Fence the database.
func Guard(s store.Store, l *Lease) *Guarded { return role.Guard(s, l) }

package lease_test

import (
	"context"
	"log"

	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

// A broker in database master/slave: stand by until master, open the store
// with its commits fenced by the lease, serve until the lease is lost.
func Example() {
	ctx := context.Background()
	o := sqlstore.Options{Driver: "postgres", DSN: "postgres://broker@db.example/lossbench"}
	db, dialect, err := sqlstore.OpenDB(o)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	l := lease.New(db, dialect, "broker-a:61613", lease.Options{}) // renew 1s, lease 5s
	if _, err := l.Acquire(ctx); err != nil {                      // /readyz: 503 "standby" meanwhile
		log.Fatal(err)
	}
	defer l.Release()
	o.Fence = l.Fence
	s, err := sqlstore.Open(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	var st store.Store = lease.Guard(s, l)
	defer st.Close()
	// ... Recover, serve clients through st ...
	<-l.Lost() // stop serving: fail stop, then stand by again with a new Lease
}

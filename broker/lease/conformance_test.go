package lease_test

import (
	"database/sql"
	"sync"
	"testing"

	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/role/locktest"
	"github.com/lossbench/lossbench/broker/sqlstore"
)

// TestLockConformance runs role's lock suite on the database lease, each
// contender with its own database handle; Cut closes the handle, as the
// database is lost to a killed or cut-off broker.
func TestLockConformance(t *testing.T) {
	forEach(t, func(t *testing.T, kind string) {
		locktest.Run(t, func(t *testing.T) locktest.Pool { return &dbPool{o: freshDB(t, kind)} })
	})
}

type dbPool struct {
	o   sqlstore.Options
	mu  sync.Mutex
	dbs map[string]*sql.DB
}

func (p *dbPool) New(t *testing.T, owner string, o role.TermOptions) role.Lock {
	db, dialect, err := sqlstore.OpenDB(p.o)
	if err != nil {
		t.Fatal(err)
	}
	l := lease.New(db, dialect, owner, o)
	p.mu.Lock()
	if p.dbs == nil {
		p.dbs = map[string]*sql.DB{}
	}
	p.dbs[owner] = db
	p.mu.Unlock()
	t.Cleanup(func() {
		l.Release()
		db.Close()
	})
	return l
}

func (p *dbPool) Cut(t *testing.T, owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dbs[owner].Close()
}

package sqlstore_test

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/chaos/dbserver"
)

func BenchmarkWriteSQLite1(b *testing.B)    { benchWrite(b, targets[0], 1, 1024) }
func BenchmarkWriteSQLite16(b *testing.B)   { benchWrite(b, targets[0], 16, 1024) }
func BenchmarkWritePostgres1(b *testing.B)  { benchWrite(b, targets[1], 1, 1024) }
func BenchmarkWritePostgres16(b *testing.B) { benchWrite(b, targets[1], 16, 1024) }
func BenchmarkWriteMariaDB1(b *testing.B)   { benchWrite(b, targets[2], 1, 1024) }
func BenchmarkWriteMariaDB16(b *testing.B)  { benchWrite(b, targets[2], 16, 1024) }

// The database's own limit beside the store: one single-row INSERT of a
// 1 KiB body per autocommitted transaction, each client on its own
// connection (what pgbench measures, and what ActiveMQ's JDBC store does
// per message).
func BenchmarkRawInsertPostgres1(b *testing.B)  { benchRawInsert(b, dbserver.Postgres, 1, 1024) }
func BenchmarkRawInsertPostgres16(b *testing.B) { benchRawInsert(b, dbserver.Postgres, 16, 1024) }
func BenchmarkRawInsertMariaDB1(b *testing.B)   { benchRawInsert(b, dbserver.MariaDB, 1, 1024) }
func BenchmarkRawInsertMariaDB16(b *testing.B)  { benchRawInsert(b, dbserver.MariaDB, 16, 1024) }

// benchWrite measures Write of one size-byte message per batch from
// writers concurrent goroutines; one op is one message.
func benchWrite(b *testing.B, tg target, writers, size int) {
	s := mustOpen(b, freshOptions(b, tg))
	defer s.Close()
	body := make([]byte, size)
	runParallel(b, writers, size, func() error {
		m := &store.Message{Queue: "/queue/bench", Body: body, Headers: []store.Header{{Key: "persistent", Value: "true"}}}
		return s.Write(context.Background(), &store.Batch{Adds: []*store.Message{m}})
	})
	st := s.Stats()
	b.ReportMetric(st["writes_per_commit_avg"], "writes/commit")
}

func benchRawInsert(b *testing.B, kind dbserver.Kind, clients, size int) {
	opts := freshOptions(b, target{kind: kind})
	driver, create := "pgx", "CREATE TABLE raw (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
	insert := "INSERT INTO raw (body) VALUES ($1)"
	if kind == dbserver.MariaDB {
		driver, create = "mysql", "CREATE TABLE raw (id BIGINT AUTO_INCREMENT PRIMARY KEY, body LONGBLOB NOT NULL) ENGINE=InnoDB"
		insert = "INSERT INTO raw (body) VALUES (?)"
	}
	db, err := sql.Open(driver, opts.DSN)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	if _, err := db.Exec(create); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size)
	runParallel(b, clients, size, func() error {
		_, err := db.Exec(insert, body)
		return err
	})
}

// runParallel runs b.N calls of op spread over n goroutines.
func runParallel(b *testing.B, n, size int, op func() error) {
	b.SetBytes(int64(size))
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		fail error
	)
	b.ResetTimer()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					once.Do(func() { fail = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if fail != nil {
		b.Fatal(fail)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkSendAckSQLite1(b *testing.B)    { benchSendAck(b, targets[0], 1, 1024) }
func BenchmarkSendAckSQLite16(b *testing.B)   { benchSendAck(b, targets[0], 16, 1024) }
func BenchmarkSendAckPostgres1(b *testing.B)  { benchSendAck(b, targets[1], 1, 1024) }
func BenchmarkSendAckPostgres16(b *testing.B) { benchSendAck(b, targets[1], 16, 1024) }
func BenchmarkSendAckMariaDB1(b *testing.B)   { benchSendAck(b, targets[2], 1, 1024) }
func BenchmarkSendAckMariaDB16(b *testing.B)  { benchSendAck(b, targets[2], 16, 1024) }

// benchSendAck is the store's share of a broker run: producers Write one
// message per batch while one consumer acknowledges each as soon as its
// add has returned, all acks waiting at that moment in one batch. One op is one message sent and
// acknowledged; the backlog is empty at the end.
func benchSendAck(b *testing.B, tg target, producers, size int) {
	s := mustOpen(b, freshOptions(b, tg))
	defer s.Close()
	body := make([]byte, size)
	sent := make(chan uint64, 1024)
	acked := make(chan error, 1)
	go func() {
		for seq := range sent {
			// Acknowledge this one and every other waiting, in one batch:
			// a consumer's acks must not wait for a commit each.
			acks := []uint64{seq}
		more:
			for len(acks) < 256 {
				select {
				case seq, ok := <-sent:
					if !ok {
						break more
					}
					acks = append(acks, seq)
				default:
					break more
				}
			}
			if err := s.Write(context.Background(), &store.Batch{Acks: acks}); err != nil {
				acked <- err
				for range sent {
				}
				return
			}
		}
		acked <- nil
	}()
	runParallel(b, producers, size, func() error {
		m := &store.Message{Queue: "/queue/bench", Body: body}
		if err := s.Write(context.Background(), &store.Batch{Adds: []*store.Message{m}}); err != nil {
			return err
		}
		sent <- m.Seq
		return nil
	})
	close(sent)
	if err := <-acked; err != nil {
		b.Fatal(err)
	}
	st := s.Stats()
	if st["live_messages"] != 0 {
		b.Fatalf("%v messages left unacknowledged", st["live_messages"])
	}
	b.ReportMetric(st["writes_per_commit_avg"], "writes/commit")
}

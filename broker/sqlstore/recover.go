package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lossbench/lossbench/broker/store"
)

// Page sizes of Recover's primary-key range scans.
const (
	recoverPageBodies   = 256
	recoverPageNoBodies = 10000
)

// Recover implements store.Store. It streams the unacknowledged messages
// in seq order, a page of rows at a time (WHERE seq > last ORDER BY seq
// LIMIT n), with their bodies while the bodies handed out stay within
// Options.BodyBudget; past it the pages leave the body column out and
// messages come with Body nil and Size set, to be read back with Load.
// Memory stays bounded by one page whatever the backlog.
func (s *Store) Recover(ctx context.Context, fn func(*store.Message) error) error {
	budget := s.opts.BodyBudget
	var after int64 = -1
	for {
		n, err := s.recoverPage(ctx, &after, &budget, fn)
		if err != nil || n == 0 {
			return err
		}
	}
}

// recoverPage hands out one page of messages with seq > *after and
// returns how many.
func (s *Store) recoverPage(ctx context.Context, after, budget *int64, fn func(*store.Message) error) (int, error) {
	withBodies := *budget > 0 // the page's query selects the body column
	cols, limit := "seq, queue, headers, length(body)", recoverPageNoBodies
	if withBodies {
		cols, limit = cols+", body", recoverPageBodies
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM lossbench_msgs WHERE seq > %s ORDER BY seq LIMIT %d",
		cols, s.d.ph(1), limit), *after)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: recover: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			seq            int64
			queue, headers []byte
			size           int64
			body           []byte
		)
		dest := []any{&seq, &queue, &headers, &size}
		if withBodies {
			dest = append(dest, &body)
		}
		if err := rows.Scan(dest...); err != nil {
			return n, fmt.Errorf("sqlstore: recover: %w", err)
		}
		switch {
		case !withBodies || *budget < 0:
			body = nil
		case size > *budget:
			// The budget has run out: this message and every later one
			// without its body.
			*budget, body = -1, nil
		default:
			*budget -= size
			if body == nil {
				body = []byte{}
			}
		}
		hs, err := decodeHeaders(headers)
		if err != nil {
			return n, fmt.Errorf("%w (message %d)", err, seq)
		}
		*after = seq
		n++
		if err := fn(&store.Message{Seq: uint64(seq), Queue: string(queue), Headers: hs, Body: body, Size: int(size)}); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("sqlstore: recover: %w", err)
	}
	return n, nil
}

// Load implements store.Loader.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, "SELECT body FROM lossbench_msgs WHERE seq = "+s.d.ph(1), int64(seq)).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: load of unknown message %d", seq)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load %d: %w", seq, err)
	}
	if body == nil {
		body = []byte{}
	}
	return body, nil
}

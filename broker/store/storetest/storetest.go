// Package storetest is the conformance suite every store.Store passes:
// memory, journal, and the stores later issues add. A store's test calls
// Run with a function that gives each subtest a fresh, empty place to keep
// a store in, and a way to open the store there — again after Close, to
// test recovery, when the store is durable.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			dir := t.TempDir()
//			return storetest.Harness{Durable: true, Open: func(t *testing.T) store.Store {
//				s, err := journal.Open(dir, journal.Options{})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			}}
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
)

// Harness opens one store for a subtest.
type Harness struct {
	// Open opens the store. For a Durable store, every call opens the same
	// store, with what the previous one wrote before it was closed.
	Open func(t *testing.T) store.Store
	// Durable says the store keeps its messages across Close and Open.
	// Tests of recovery are skipped for stores that do not.
	Durable bool
	// LargeBody is the size of the large-body test; 0 means 4 MiB.
	LargeBody int
}

// Run runs the conformance suite. newHarness is called once per subtest
// and must return a harness over fresh, empty storage.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name    string
		durable bool
		fn      func(t *testing.T, h Harness)
	}{
		{"Empty", false, testEmpty},
		{"WriteRecoverOrder", true, testWriteRecoverOrder},
		{"AcksRemove", false, testAcksRemove},
		{"AcksRemoveAcrossReopen", true, testAcksRemoveAcrossReopen},
		{"BatchAddsAndAcks", true, testBatchAddsAndAcks},
		{"AckUnknownRejectsBatch", false, testAckUnknown},
		{"AckTwiceRejectsBatch", false, testAckTwice},
		{"SeqsIncrease", false, testSeqsIncrease},
		{"SeqsNotReusedAfterReopen", true, testSeqsNotReused},
		{"ExactBytes", false, testExactBytes},
		{"ExactBytesAfterReopen", true, testExactBytesAfterReopen},
		{"LargeBody", false, testLargeBody},
		{"ConcurrentWrites", false, testConcurrent},
		{"Load", false, testLoad},
		{"RecoverError", true, testRecoverError},
		{"Closed", false, testClosed},
		{"ManyReopens", true, testManyReopens},
		{"ApplyKeepsSeqs", false, testApplyKeepsSeqs},
		{"ApplyRejectsOldSeqs", false, testApplyRejectsOldSeqs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.durable && !h.Durable {
				t.Skip("store is not durable")
			}
			tc.fn(t, h)
		})
	}
}

var ctx = context.Background()

func open(t *testing.T, h Harness) store.Store {
	t.Helper()
	s := h.Open(t)
	t.Cleanup(func() { s.Close() })
	return s
}

func closeStore(t *testing.T, s store.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func msg(i int) *store.Message {
	return &store.Message{
		Queue:   fmt.Sprintf("/queue/q%d", i%3),
		Headers: []store.Header{{Key: "n", Value: fmt.Sprint(i)}, {Key: "persistent", Value: "true"}},
		Body:    []byte(fmt.Sprintf("body %d", i)),
	}
}

func write(t *testing.T, s store.Store, b *store.Batch) {
	t.Helper()
	if err := s.Write(ctx, b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func add(t *testing.T, s store.Store, msgs ...*store.Message) []uint64 {
	t.Helper()
	write(t, s, &store.Batch{Adds: msgs})
	seqs := make([]uint64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	return seqs
}

// recoverAll returns what Recover hands out, with bodies left out by the
// store read back through store.Loader.
func recoverAll(t *testing.T, s store.Store) []*store.Message {
	t.Helper()
	var got []*store.Message
	if err := s.Recover(ctx, func(m *store.Message) error {
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	for _, m := range got {
		if m.Body == nil && m.Size > 0 {
			l, ok := s.(store.Loader)
			if !ok {
				t.Fatalf("Recover gave message %d without its body, and the store is no Loader", m.Seq)
			}
			body, err := l.Load(ctx, m.Seq)
			if err != nil {
				t.Fatalf("Load(%d): %v", m.Seq, err)
			}
			m.Body = body
		}
	}
	return got
}

func sameMessage(t *testing.T, got, want *store.Message) {
	t.Helper()
	if got.Seq != want.Seq || got.Queue != want.Queue || got.Size != len(want.Body) ||
		!bytes.Equal(got.Body, want.Body) || !sameHeaders(got.Headers, want.Headers) {
		t.Fatalf("message %d: got %s, want %s", want.Seq, describe(got), describe(want))
	}
}

func sameHeaders(a, b []store.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func describe(m *store.Message) string {
	body := m.Body
	if len(body) > 32 {
		body = body[:32]
	}
	return fmt.Sprintf("{seq %d queue %q headers %q size %d body %q (len %d)}", m.Seq, m.Queue, m.Headers, m.Size, body, len(m.Body))
}

func sameMessages(t *testing.T, got, want []*store.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("recovered %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		sameMessage(t, got[i], want[i])
	}
}

func testEmpty(t *testing.T, h Harness) {
	s := open(t, h)
	if got := recoverAll(t, s); len(got) != 0 {
		t.Fatalf("fresh store recovered %d messages", len(got))
	}
	if n, ok := s.(store.Namer); ok && n.Name() == "" {
		t.Error("Name is empty")
	}
	if st, ok := s.(store.Statser); ok && st.Stats() == nil {
		t.Error("Stats is nil")
	}
	write(t, s, &store.Batch{}) // an empty batch is fine
}

func testWriteRecoverOrder(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	var want []*store.Message
	for i := 0; i < 50; i += 5 {
		batch := []*store.Message{msg(i), msg(i + 1), msg(i + 2), msg(i + 3), msg(i + 4)}
		add(t, s, batch...)
		want = append(want, batch...)
	}
	closeStore(t, s)
	s = open(t, h)
	sameMessages(t, recoverAll(t, s), want)
}

func testAcksRemove(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	seqs := add(t, s, msg(0), msg(1), msg(2))
	write(t, s, &store.Batch{Acks: []uint64{seqs[1]}})
	l, ok := s.(store.Loader)
	if !ok {
		return
	}
	if _, err := l.Load(ctx, seqs[1]); err == nil {
		t.Error("Load of an acknowledged message succeeded")
	}
	if body, err := l.Load(ctx, seqs[2]); err != nil || string(body) != "body 2" {
		t.Errorf("Load(%d) = %q, %v", seqs[2], body, err)
	}
}

func testAcksRemoveAcrossReopen(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	var all, want []*store.Message
	for i := 0; i < 20; i++ {
		m := msg(i)
		add(t, s, m)
		all = append(all, m)
		if i%2 == 0 {
			want = append(want, m)
		}
	}
	// Ack some odd ones in this incarnation, the rest in the next.
	write(t, s, &store.Batch{Acks: []uint64{all[1].Seq, all[3].Seq, all[5].Seq}})
	closeStore(t, s)

	s = open(t, h)
	if got := recoverAll(t, s); len(got) != 17 {
		t.Fatalf("recovered %d messages, want 17", len(got))
	}
	var acks []uint64
	for i := 7; i < 20; i += 2 {
		acks = append(acks, all[i].Seq)
	}
	write(t, s, &store.Batch{Acks: acks[:3]})
	for _, seq := range acks[3:] {
		write(t, s, &store.Batch{Acks: []uint64{seq}})
	}
	closeStore(t, s)
	s = open(t, h)
	sameMessages(t, recoverAll(t, s), want)
}

func testBatchAddsAndAcks(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	first := add(t, s, msg(0), msg(1))
	m2, m3 := msg(2), msg(3)
	write(t, s, &store.Batch{Adds: []*store.Message{m2, m3}, Acks: first})
	closeStore(t, s)
	s = open(t, h)
	sameMessages(t, recoverAll(t, s), []*store.Message{m2, m3})
}

func testAckUnknown(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	seqs := add(t, s, msg(0))
	m := msg(1)
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{m}, Acks: []uint64{seqs[0] + 1000}}); err == nil {
		t.Fatal("Write acknowledging an unknown message succeeded")
	}
	if !h.Durable {
		return
	}
	s.Close()
	s = open(t, h)
	got := recoverAll(t, s)
	if len(got) != 1 || got[0].Seq != seqs[0] {
		t.Fatalf("after a rejected batch recovered %v, want only message %d", got, seqs[0])
	}
}

// testAckTwice: a batch acknowledging one message twice, in a short
// batch and in a long one, is refused and changes nothing: the message
// is still there to acknowledge once.
func testAckTwice(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	var msgs []*store.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, msg(i))
	}
	seqs := add(t, s, msgs...)
	for _, acks := range [][]uint64{
		{seqs[0], seqs[1], seqs[0]},
		append(append([]uint64(nil), seqs...), seqs[19]),
	} {
		if err := s.Write(ctx, &store.Batch{Acks: acks}); err == nil {
			t.Fatalf("Write acknowledging message %d twice in %d acks succeeded", acks[len(acks)-1], len(acks))
		}
	}
	write(t, s, &store.Batch{Acks: seqs})
}

func testSeqsIncrease(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	var last uint64
	for i := 0; i < 30; i++ {
		batch := make([]*store.Message, 1+i%4)
		for j := range batch {
			batch[j] = msg(i)
		}
		for _, seq := range add(t, s, batch...) {
			if seq <= last {
				t.Fatalf("seq %d after %d", seq, last)
			}
			last = seq
		}
	}
}

func testSeqsNotReused(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	seqs := add(t, s, msg(0), msg(1), msg(2))
	write(t, s, &store.Batch{Acks: seqs})
	closeStore(t, s)
	s = open(t, h)
	if got := recoverAll(t, s); len(got) != 0 {
		t.Fatalf("recovered %d messages after acking all", len(got))
	}
	next := add(t, s, msg(3))
	if next[0] <= seqs[2] {
		t.Fatalf("seq %d reused after reopen (had handed out up to %d)", next[0], seqs[2])
	}
	write(t, s, &store.Batch{Acks: next})
	closeStore(t, s)
	s = open(t, h)
	recoverAll(t, s)
	again := add(t, s, msg(4))
	if again[0] <= next[0] {
		t.Fatalf("seq %d reused after second reopen (had handed out up to %d)", again[0], next[0])
	}
}

// oddMessages have bodies and headers a careless encoding would damage.
func oddMessages() []*store.Message {
	all := make([]byte, 256*3)
	for i := range all {
		all[i] = byte(i)
	}
	return []*store.Message{
		{Queue: "/queue/binary", Body: all},
		{Queue: "/queue/empty", Body: []byte{}},
		{Queue: "/queue/nil-body"},
		{Queue: "/queue/headers", Body: []byte("x"), Headers: []store.Header{
			{Key: "a", Value: ""}, {Key: "", Value: "empty key"}, {Key: "a", Value: "duplicate key"},
			{Key: "colon:newline\n", Value: "back\\slash\r\n\x00nul"},
			{Key: "unicode", Value: "héllo wörld ✓ 日本"},
		}},
		{Queue: "", Body: []byte("\x00\x00\x00\x00\x00\x00\x00\x00")}, // looks like the end of a log
		{Queue: "/queue/" + strings.Repeat("long", 300), Body: bytes.Repeat([]byte{0xff}, 1000)},
	}
}

func testExactBytes(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	msgs := oddMessages()
	add(t, s, msgs...)
	for _, m := range msgs {
		if m.Size != len(m.Body) {
			t.Errorf("Write set Size %d, want %d", m.Size, len(m.Body))
		}
	}
	if l, ok := s.(store.Loader); ok {
		for _, m := range msgs {
			body, err := l.Load(ctx, m.Seq)
			if err != nil || !bytes.Equal(body, m.Body) {
				t.Errorf("Load(%d) = %q, %v; want %q", m.Seq, body, err, m.Body)
			}
		}
	}
}

func testExactBytesAfterReopen(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	msgs := oddMessages()
	add(t, s, msgs[:2]...)
	add(t, s, msgs[2:]...)
	closeStore(t, s)
	s = open(t, h)
	sameMessages(t, recoverAll(t, s), msgs)
}

func testLargeBody(t *testing.T, h Harness) {
	n := h.LargeBody
	if n == 0 {
		n = 4 << 20
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(i * 7)
	}
	s := open(t, h)
	recoverAll(t, s)
	m := &store.Message{Queue: "/queue/large", Body: body}
	small := msg(1)
	add(t, s, m)
	add(t, s, small)
	if l, ok := s.(store.Loader); ok {
		got, err := l.Load(ctx, m.Seq)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("Load of large body: %d bytes, %v", len(got), err)
		}
	}
	if !h.Durable {
		return
	}
	closeStore(t, s)
	s = open(t, h)
	sameMessages(t, recoverAll(t, s), []*store.Message{m, small})
}

func testConcurrent(t *testing.T, h Harness) {
	const writers, perWriter = 16, 25
	s := open(t, h)
	recoverAll(t, s)
	var (
		mu   sync.Mutex
		all  []*store.Message
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []*store.Message
			for i := 0; i < perWriter; i++ {
				m := msg(w*1000 + i)
				b := &store.Batch{Adds: []*store.Message{m}}
				if i%5 == 4 { // ack one of our own earlier messages
					b.Acks = []uint64{mine[len(mine)-1].Seq}
					mine = mine[:len(mine)-1]
				}
				if err := s.Write(ctx, b); err != nil {
					errs <- err
					return
				}
				if len(mine) > 0 && m.Seq <= mine[len(mine)-1].Seq {
					errs <- fmt.Errorf("writer %d: seq %d after %d", w, m.Seq, mine[len(mine)-1].Seq)
					return
				}
				mine = append(mine, m)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[uint64]bool)
	for _, m := range all {
		if seen[m.Seq] {
			t.Fatalf("seq %d handed out twice", m.Seq)
		}
		seen[m.Seq] = true
	}
	if !h.Durable {
		return
	}
	closeStore(t, s)
	s = open(t, h)
	got := recoverAll(t, s)
	bySeq := make(map[uint64]*store.Message)
	for _, m := range all {
		bySeq[m.Seq] = m
	}
	if len(got) != len(all) {
		t.Fatalf("recovered %d messages, want %d", len(got), len(all))
	}
	for i, m := range got {
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Fatalf("Recover out of order: %d after %d", m.Seq, got[i-1].Seq)
		}
		want, ok := bySeq[m.Seq]
		if !ok {
			t.Fatalf("recovered message %d that was acknowledged", m.Seq)
		}
		sameMessage(t, m, want)
	}
}

func testLoad(t *testing.T, h Harness) {
	s := open(t, h)
	l, ok := s.(store.Loader)
	if !ok {
		t.Skip("not a Loader")
	}
	recoverAll(t, s)
	seqs := add(t, s, msg(0), msg(1))
	for i, seq := range seqs {
		body, err := l.Load(ctx, seq)
		if err != nil || string(body) != fmt.Sprintf("body %d", i) {
			t.Errorf("Load(%d) = %q, %v", seq, body, err)
		}
	}
	if _, err := l.Load(ctx, seqs[1]+1000); err == nil {
		t.Error("Load of an unknown seq succeeded")
	}
	if !h.Durable {
		return
	}
	closeStore(t, s)
	s = open(t, h)
	l = s.(store.Loader)
	recoverAll(t, s)
	if body, err := l.Load(ctx, seqs[1]); err != nil || string(body) != "body 1" {
		t.Errorf("Load(%d) after reopen = %q, %v", seqs[1], body, err)
	}
}

func testRecoverError(t *testing.T, h Harness) {
	s := open(t, h)
	recoverAll(t, s)
	add(t, s, msg(0), msg(1), msg(2))
	closeStore(t, s)
	s = open(t, h)
	boom := errors.New("boom")
	calls := 0
	err := s.Recover(ctx, func(*store.Message) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Recover returned %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Fatalf("Recover called fn %d times after it failed", calls)
	}
}

func testClosed(t *testing.T, h Harness) {
	s := h.Open(t)
	recoverAll(t, s)
	seqs := add(t, s, msg(0))
	closeStore(t, s)
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{msg(1)}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Write after Close = %v, want store.ErrClosed", err)
	}
	if err := s.Write(ctx, &store.Batch{Acks: seqs}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("ack after Close = %v, want store.ErrClosed", err)
	}
	s.Close() // a second Close must not panic
}

func testManyReopens(t *testing.T, h Harness) {
	live := map[uint64]*store.Message{}
	var order []uint64
	for round := 0; round < 5; round++ {
		s := open(t, h)
		got := recoverAll(t, s)
		var want []*store.Message
		for _, seq := range order {
			if m, ok := live[seq]; ok {
				want = append(want, m)
			}
		}
		sameMessages(t, got, want)
		// ack the oldest half, add a few more
		var acks []uint64
		for _, m := range got[:len(got)/2] {
			acks = append(acks, m.Seq)
			delete(live, m.Seq)
		}
		adds := []*store.Message{msg(round*10 + 1), msg(round*10 + 2), msg(round*10 + 3)}
		write(t, s, &store.Batch{Adds: adds, Acks: acks})
		for _, m := range adds {
			live[m.Seq] = m
			order = append(order, m.Seq)
		}
		closeStore(t, s)
	}
}

package journal

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

func crashIterations() int {
	switch {
	case *iterations > 0:
		return *iterations
	case testing.Short():
		return 20
	}
	return 60
}

// TestCrashRandom crashes a journal under concurrent load at a random
// moment, with or without a torn tail, and checks what recovery finds:
// the state after some prefix of the batches in log order, which contains
// every batch acknowledged before the crash (for the durable policies).
// Every batch carries at least one add, so its place in the log is the
// seq of its first add.
func TestCrashRandom(t *testing.T) {
	base := *seedFlag
	if base == 0 {
		base = 1
	}
	policies := []SyncPolicy{{Mode: SyncBatch}, {Mode: SyncAlways}, {Mode: SyncInterval, Interval: time.Millisecond}, {Mode: SyncNever}}
	for i := 0; i < crashIterations(); i++ {
		seed := base + uint64(i)
		policy := policies[i%len(policies)]
		if !crashOnce(t, seed, policy) {
			t.Fatalf("replay with -seed=%d -iterations=1 (policy %v)", seed, policy)
		}
	}
}

type crashBatch struct {
	adds []*store.Message
	acks []uint64
	// acked: Write returned nil before the crash was taken.
	acked bool
}

func crashOnce(t *testing.T, seed uint64, policy SyncPolicy) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 42))
	mem := vfs.NewCrashableMem()
	segSize := int64(1<<10) * int64(2+rng.IntN(7))
	opts := Options{Sync: policy, SegmentSize: segSize}
	s := mustOpen(t, mem, opts)

	var (
		mu      sync.Mutex
		batches []*crashBatch
		crashed bool
		nAcked  int
		snap    *vfs.MemFS
	)
	writers := 1 + rng.IntN(6)
	crashAt := 1 + rng.IntN(150)
	torn := rng.IntN(2) == 0
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		wrng := rand.New(rand.NewPCG(seed, uint64(w)))
		go func(w int) {
			defer wg.Done()
			var mine []uint64 // my adds whose batch was acknowledged, not yet acked
			for i := 0; !stop.Load() && i < 400; i++ {
				b := &crashBatch{}
				for j := 0; j < 1+wrng.IntN(3); j++ {
					m := testMsg(w*10000 + i*10 + j)
					m.Body = append(m.Body, make([]byte, wrng.IntN(300))...)
					b.adds = append(b.adds, m)
				}
				for len(mine) > 0 && wrng.IntN(2) == 0 {
					b.acks = append(b.acks, mine[0])
					mine = mine[1:]
				}
				err := s.Write(bg, &store.Batch{Adds: b.adds, Acks: b.acks})
				if err != nil {
					t.Errorf("seed %d: Write: %v", seed, err)
					return
				}
				for _, m := range b.adds {
					mine = append(mine, m.Seq)
				}
				mu.Lock()
				b.acked = !crashed
				batches = append(batches, b)
				if !crashed {
					nAcked++
					if nAcked == crashAt {
						crashed = true
						if torn {
							snap = mem.CrashTorn(seed)
						} else {
							snap = mem.Crash()
						}
						// Let the writers go on a little, then stop.
						time.AfterFunc(time.Millisecond, func() { stop.Store(true) })
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("seed %d: Close: %v", seed, err)
	}
	if snap == nil { // fewer acknowledged writes than crashAt
		snap = mem.Crash()
	}

	logs := &logBuf{}
	opts.Logf = logs.logf
	r, err := Open(testDir, Options{FS: snap, Sync: policy, SegmentSize: segSize, Logf: logs.logf})
	if err != nil {
		t.Errorf("seed %d: reopen after crash: %v", seed, err)
		return false
	}
	defer r.Close()
	got := recovered(t, r)

	// Replay batches in log order and find the prefix recovery produced.
	sort.Slice(batches, func(i, j int) bool { return batches[i].adds[0].Seq < batches[j].adds[0].Seq })
	mustHave := 0
	for i, b := range batches {
		if b.acked {
			mustHave = i + 1
		}
	}
	if !policy.Durable() {
		mustHave = 0
	}
	state := map[uint64]*store.Message{}
	var maxSeq uint64
	match := -1
	for k := 0; k <= len(batches); k++ {
		if k > 0 {
			b := batches[k-1]
			for _, m := range b.adds {
				state[m.Seq] = m
				maxSeq = m.Seq
			}
			for _, seq := range b.acks {
				delete(state, seq)
			}
		}
		if k >= mustHave && len(state) == len(got) && sameState(state, got) {
			match = k
			break
		}
	}
	if match < 0 {
		t.Errorf("seed %d (policy %v, %d writers, segment %d, torn %v): recovered %d messages, which is no prefix of the log covering the %d batches acknowledged before the crash\nlog:\n%s",
			seed, policy, writers, segSize, torn, len(got), mustHave, logs)
		return false
	}

	t.Logf("seed %d policy %v writers %d segment %d torn %v: %d batches, %d acknowledged before the crash, recovered prefix %d (%d live); %d segments; %s",
		seed, policy, writers, segSize, torn, len(batches), mustHave, match, len(got), len(segmentFiles(t, snap)), logs)

	// The recovered journal takes new writes with fresh seqs and survives
	// another reopen.
	m := testMsg(7)
	addMsgs(t, r, m)
	if m.Seq <= maxSeq {
		t.Errorf("seed %d: seq %d after recovery reuses a seq up to %d of the recovered prefix", seed, m.Seq, maxSeq)
		return false
	}
	r.Close()
	r2, err := Open(testDir, Options{FS: snap, SegmentSize: segSize})
	if err != nil {
		t.Errorf("seed %d: second reopen: %v", seed, err)
		return false
	}
	defer r2.Close()
	if n := len(recovered(t, r2)); n != len(got)+1 {
		t.Errorf("seed %d: second reopen recovered %d, want %d", seed, n, len(got)+1)
		return false
	}
	return true
}

func sameState(want, got map[uint64]*store.Message) bool {
	for seq, m := range want {
		g, ok := got[seq]
		if !ok || !sameMsg(g, m) {
			return false
		}
	}
	return true
}

// TestCrashReclaimNoResurrection crashes right after segments were
// reclaimed, with the directory entries' removal possibly not durable.
func TestCrashReclaimNoResurrection(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, Options{SegmentSize: 2 << 10, syncPrealloc: true})
	var seqs []uint64
	for i := 0; i < 60; i++ {
		m := testMsg(i)
		addMsgs(t, s, m)
		seqs = append(seqs, m.Seq)
	}
	keep := seqs[len(seqs)-1]
	for _, seq := range seqs[:len(seqs)-1] {
		if err := s.Write(bg, &store.Batch{Acks: []uint64{seq}}); err != nil {
			t.Fatal(err)
		}
		// Crash at many points while acks and reclamation go on.
		if seq%7 == 0 {
			checkOnly(t, mem.Crash(), seq, keep)
		}
	}
	checkOnly(t, mem.Crash(), 0, keep)
	s.Close()
}

// checkOnly reopens fs and checks that no message up to ackedThrough is
// back and keep is there.
func checkOnly(t *testing.T, fs *vfs.MemFS, ackedThrough, keep uint64) {
	t.Helper()
	s := mustOpen(t, fs, Options{SegmentSize: 2 << 10})
	defer s.Close()
	got := recovered(t, s)
	for seq := range got {
		if seq <= ackedThrough {
			t.Fatalf("acknowledged message %d came back after a crash", seq)
		}
	}
	if _, ok := got[keep]; !ok {
		t.Fatalf("live message %d lost", keep)
	}
}

func ExampleOpen() {
	s, err := Open("/journal", Options{FS: vfs.NewMem(), SegmentSize: 64 << 10})
	if err != nil {
		panic(err)
	}
	m := &store.Message{Queue: "/queue/orders", Body: []byte("hello")}
	if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
		panic(err)
	}
	fmt.Println("seq", m.Seq)
	if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
		panic(err)
	}
	fmt.Println("live", s.Stats()["live_messages"])
	s.Close()
	// Output:
	// seq 1
	// live 0
}

package replication

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
)

var genCorpus = flag.Bool("gen-corpus", false, "rewrite testdata/fuzz/FuzzReadFrame from frames this test makes")

// sampleStreams are streams of valid frames of every type.
func sampleStreams() [][]byte {
	b := &store.Batch{Acks: []uint64{3, 9}, Adds: []*store.Message{{Seq: 12, Queue: "/queue/q",
		Headers: []store.Header{{Key: "k", Value: "v"}}, Body: []byte("body")}}}
	frames := [][]byte{
		appendFrame(nil, typeHello, hello{Epoch: 2, ID: "a", LSN: 7}.encode()),
		appendFrame(nil, typeWelcome, welcome{OK: true, Epoch: 2, ID: "b"}.encode()),
		appendFrame(nil, typeWelcome, welcome{OK: true, Epoch: 2, ID: "b", Pos: &position{Epoch: 1, ID: "a", LSN: 6, Next: 12}}.encode()),
		appendFrame(nil, typeResume, resume{OK: true, LSN: 7}.encode()),
		appendFrame(nil, typePosition, position{Epoch: 1, ID: "a", LSN: 7}.append(position{Epoch: 1, ID: "a", LSN: 6, Next: 12}.append(nil))),
		appendFrame(nil, typeSnapshot, snapshot{LSN: 7, Next: 13, Final: true, Batch: b}.encode()),
		appendFrame(nil, typeGroup, encodeGroup(8, []*store.Batch{b, {Acks: []uint64{12}}})),
		appendFrame(nil, typeAck, encodeLSN(9)),
		appendFrame(nil, typePing, encodeLSN(9)),
		appendFrame(nil, typeProbe, nodeState{ID: "a", Role: roleMaster, Epoch: 2, Eligible: true, NextSeq: 13}.encode()),
		appendFrame(nil, typeRenew, witnessReq{ID: "a", Epoch: 2, InSync: []string{"b"}}.encode()),
		appendFrame(nil, typeGrant, grant{OK: true, Epoch: 2, Holder: "a"}.encode()),
	}
	out := append([][]byte(nil), frames...)
	out = append(out, bytes.Join(frames, nil))
	torn := bytes.Join(frames[:3], nil)
	out = append(out, torn[:len(torn)-5])
	bad := append([]byte(nil), frames[6]...)
	bad[len(bad)-1] ^= 1
	return append(out, bad)
}

// decodeAny decodes a frame's payload as its type says.
func decodeAny(typ byte, p []byte) error {
	var err error
	switch typ {
	case typeHello:
		_, err = decodeHello(p)
	case typeWelcome:
		_, err = decodeWelcome(p)
	case typeSnapshot:
		_, err = decodeSnapshot(p)
	case typeGroup:
		_, err = decodeGroup(p)
	case typeAck, typePing:
		_, err = decodeLSN(p, "lsn")
	case typeProbe, typeStatus:
		_, err = decodeNodeState(p)
	case typeAcquire, typeRenew, typeRelease:
		_, err = decodeWitnessReq(p)
	case typeGrant:
		_, err = decodeGrant(p)
	case typeResume:
		_, err = decodeResume(p)
	case typePosition:
		_, _, err = decodePositions(p)
	default:
		return fmt.Errorf("%w: type %d", ErrProtocol, typ)
	}
	return err
}

// FuzzReadFrame reads arbitrary bytes as a replication stream: the
// reader never panics nor allocates past MaxFrame; it ends with EOF, a
// short frame (io.ErrUnexpectedEOF) or ErrCorrupt; a frame that passes
// its checksum decodes or fails with ErrCorrupt/ErrProtocol; and a
// decoded group re-encodes to the same payload.
func FuzzReadFrame(f *testing.F) {
	for _, s := range sampleStreams() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data))
		for {
			typ, p, err := fr.next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("reader error %v", err)
				}
				return
			}
			if err := decodeAny(typ, p); err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrProtocol) {
					t.Fatalf("decode error %v", err)
				}
				continue
			}
			if typ == typeGroup {
				g, _ := decodeGroup(p)
				if again := encodeGroup(g.First, g.Batches); !bytes.Equal(again, p) {
					// uvarints may be non-minimal in fuzz input: decode again.
					g2, err := decodeGroup(again)
					if err != nil || fmt.Sprint(g2.First, len(g2.Batches)) != fmt.Sprint(g.First, len(g.Batches)) {
						t.Fatalf("group does not round-trip: %v", err)
					}
				}
			}
		}
	})
}

// TestFuzzCorpus keeps testdata/fuzz/FuzzReadFrame in step with the
// samples (go test -run TestFuzzCorpus -gen-corpus rewrites it).
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReadFrame")
	if *genCorpus {
		os.MkdirAll(dir, 0o755)
		for i, s := range sampleStreams() {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("sample%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) < len(sampleStreams()) {
		t.Fatalf("corpus %s has %d files (%v), want %d: run with -gen-corpus", dir, len(ents), err, len(sampleStreams()))
	}
}

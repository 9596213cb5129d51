package mirror

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord: a state record read from a damaged disk is either
// refused or decodes to a record that encodes back to the same bytes;
// it never panics.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(record{state: recHealthy, set: [16]byte{1, 2, 3}, gen: 7}.encode())
	f.Add(record{state: recStale, gen: 1}.encode())
	f.Add([]byte("LBMR"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(), b) {
			t.Fatalf("decoded %+v from %x, which encodes to %x", r, b, r.encode())
		}
	})
}

package sqlstore

import (
	"testing"

	"github.com/lossbench/lossbench/broker/store"
)

func TestHeadersRoundTrip(t *testing.T) {
	for _, hs := range [][]store.Header{
		nil,
		{{Key: "", Value: ""}},
		{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}, {Key: "nul\x00", Value: "\xff\xfe not utf-8"}},
	} {
		got, err := decodeHeaders(encodeHeaders(hs))
		if err != nil || len(got) != len(hs) {
			t.Fatalf("%q: got %q, %v", hs, got, err)
		}
		for i := range hs {
			if got[i] != hs[i] {
				t.Fatalf("%q: got %q", hs, got)
			}
		}
	}
}

// FuzzDecodeHeaders checks that no column content panics the decoder and
// that what decodes survives a round trip.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add(encodeHeaders([]store.Header{{Key: "k", Value: "v"}}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 5, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := decodeHeaders(b)
		if err != nil {
			return
		}
		again, err := decodeHeaders(encodeHeaders(hs))
		if err != nil || len(again) != len(hs) {
			t.Fatalf("%x decodes to %q, which round-trips to %q, %v", b, hs, again, err)
		}
		for i := range hs {
			if again[i] != hs[i] {
				t.Fatalf("%x decodes to %q, which round-trips to %q", b, hs, again)
			}
		}
	})
}

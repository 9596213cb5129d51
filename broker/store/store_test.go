package store

import (
	"strings"
	"testing"
)

// TestCheckAcks: live acks once each pass; an unknown ack, and one ack
// twice in a short batch (scanned) and in a long one (a set), are refused
// with the store's name and the seq.
func TestCheckAcks(t *testing.T) {
	live := map[uint64]struct{}{}
	var long []uint64
	for i := uint64(1); i <= 40; i++ {
		live[i] = struct{}{}
		long = append(long, i)
	}
	for _, ok := range [][]uint64{nil, {1}, {3, 1, 2}, long} {
		if err := CheckAcks("x", ok, live); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		acks []uint64
		want string
	}{
		{[]uint64{1, 99}, "x: ack of unknown message 99"},
		{[]uint64{1, 2, 1}, "x: message 1 acknowledged twice in one batch"},
		{append(append([]uint64(nil), long...), 40), "x: message 40 acknowledged twice in one batch"},
	} {
		if err := CheckAcks("x", tc.acks, live); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.acks, err, tc.want)
		}
	}
}

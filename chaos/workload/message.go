package workload

import (
	"strconv"
)

// Message headers; part of the format the checker and brokers rely on.
const (
	HeaderProducer = "lb-producer"
	HeaderSeq      = "lb-seq"
	HeaderID       = "lb-id"
	HeaderTS       = "lb-ts"
	HeaderDedup    = "dedup-id"
)

// MessageID is the unique id of message seq of producer in run:
// "<run>-<producer>-<seq, 9 digits>". Zero-padding keeps ids sortable.
func MessageID(run, producer string, seq uint64) string {
	b := make([]byte, 0, len(run)+len(producer)+12)
	b = append(b, run...)
	b = append(b, '-')
	b = append(b, producer...)
	b = append(b, '-')
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], seq, 10)
	for i := len(d); i < 9; i++ {
		b = append(b, '0')
	}
	b = append(b, d...)
	return string(b)
}

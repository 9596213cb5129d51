package sqlstore

import (
	"encoding/binary"
	"errors"

	"github.com/lossbench/lossbench/broker/store"
)

// headersVersion is the first byte of the headers column (part of the
// format; see the package doc).
const headersVersion = 1

var errBadHeaders = errors.New("sqlstore: malformed headers column")

// encodeHeaders encodes hs for the headers column.
func encodeHeaders(hs []store.Header) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, h := range hs {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, headersVersion)
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

// decodeHeaders decodes the headers column.
func decodeHeaders(b []byte) ([]store.Header, error) {
	if len(b) == 0 || b[0] != headersVersion {
		return nil, errBadHeaders
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errBadHeaders
	}
	b = b[n:]
	if count == 0 {
		return nil, nil
	}
	hs := make([]store.Header, count)
	str := func() (string, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return "", false
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s, true
	}
	for i := range hs {
		var ok1, ok2 bool
		hs[i].Key, ok1 = str()
		hs[i].Value, ok2 = str()
		if !ok1 || !ok2 {
			return nil, errBadHeaders
		}
	}
	if len(b) != 0 {
		return nil, errBadHeaders
	}
	return hs, nil
}

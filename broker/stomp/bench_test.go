package stomp

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func BenchmarkReadFrame256(b *testing.B)   { benchRead(b, 256, true) }
func BenchmarkReadFrame1K(b *testing.B)    { benchRead(b, 1024, true) }
func BenchmarkReadFrame16K(b *testing.B)   { benchRead(b, 16<<10, true) }
func BenchmarkReadFrame1KNUL(b *testing.B) { benchRead(b, 1024, false) }
func BenchmarkWriteFrame1K(b *testing.B)   { benchWrite(b, 1024) }

// benchRead parses a stream of SEND frames like a producer's, with a
// content-length header or with the body running to NUL.
func benchRead(b *testing.B, size int, withLength bool) {
	f := &Frame{Command: SEND, Headers: []Header{
		{"destination", "/queue/bench"}, {"persistent", "true"}, {"receipt", "r-123456"},
		{"dedup-id", "producer-1-123456"}, {"content-type", "text/plain"},
	}, Body: []byte(strings.Repeat("x", size))}
	var one bytes.Buffer
	w := NewWriter(&one)
	if !withLength {
		f.Headers = append(f.Headers, Header{"content-length", "0"})
	}
	w.WriteFrame(f)
	w.Flush()
	frame := one.Bytes()
	if !withLength {
		frame = bytes.Replace(frame, []byte("content-length:"+itoa(size)+"\n"), nil, 1)
	}
	const n = 64
	stream := bytes.Repeat(frame, n)
	src := bytes.NewReader(stream)
	r := NewReader(src, Limits{})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%n == 0 {
			src.Reset(stream)
		}
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWrite(b *testing.B, size int) {
	f := &Frame{Command: MESSAGE, Headers: []Header{
		{"subscription", "0"}, {"message-id", "ID:refbroker-123456"}, {"destination", "/queue/bench"},
		{"ack", "123456"}, {"persistent", "true"},
	}, Body: []byte(strings.Repeat("x", size))}
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	var buf bytes.Buffer
	NewWriter(&buf).WriteFrame(f)
	b.SetBytes(int64(buf.Len()))
	for i := 0; i < b.N; i++ {
		if err := w.WriteFrame(f); err != nil {
			b.Fatal(err)
		}
	}
}

package stomp

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Writer encodes frames onto a buffered stream. Nothing reaches the stream
// until Flush or until the buffer fills, so a server can coalesce many
// frames into one write. It is not safe for concurrent use.
type Writer struct {
	bw *bufio.Writer
	n  [20]byte
}

// NewWriter returns a Writer with a 32 KiB buffer.
func NewWriter(w io.Writer) *Writer { return NewWriterSize(w, 32<<10) }

// NewWriterSize returns a Writer with a buffer of size bytes.
func NewWriterSize(w io.Writer, size int) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, size)}
}

// errUnencodable is returned for a CONNECT or CONNECTED header that cannot
// be written without escaping, which those frames do not have.
var errUnencodable = errors.New("stomp: CONNECT/CONNECTED header needs escaping")

// WriteFrame encodes f. A content-length header, if present, is written
// with the true body length; if absent and the body is not empty, one is
// appended, so a body may contain NUL octets.
func (w *Writer) WriteFrame(f *Frame) error {
	if f.Command == "" {
		return errors.New("stomp: frame without command")
	}
	esc := escapes(f.Command)
	if !esc {
		for _, h := range f.Headers {
			if h.Key == "" || strings.ContainsAny(h.Key, ":\n") ||
				strings.ContainsRune(h.Value, '\n') || strings.HasSuffix(h.Value, "\r") {
				return errUnencodable
			}
		}
	}
	w.bw.WriteString(f.Command)
	w.bw.WriteByte('\n')
	haveLength := false
	for _, h := range f.Headers {
		if h.Key == "content-length" && !haveLength {
			haveLength = true
			w.bw.WriteString("content-length:")
			w.bw.Write(strconv.AppendInt(w.n[:0], int64(len(f.Body)), 10))
			w.bw.WriteByte('\n')
			continue
		}
		if esc {
			w.writeEscaped(h.Key)
			w.bw.WriteByte(':')
			w.writeEscaped(h.Value)
		} else {
			w.bw.WriteString(h.Key)
			w.bw.WriteByte(':')
			w.bw.WriteString(h.Value)
		}
		w.bw.WriteByte('\n')
	}
	if !haveLength && len(f.Body) > 0 {
		w.bw.WriteString("content-length:")
		w.bw.Write(strconv.AppendInt(w.n[:0], int64(len(f.Body)), 10))
		w.bw.WriteByte('\n')
	}
	w.bw.WriteByte('\n')
	w.bw.Write(f.Body)
	return w.bw.WriteByte(0)
}

func (w *Writer) writeEscaped(s string) {
	if !strings.ContainsAny(s, "\\\r\n:") {
		w.bw.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			w.bw.WriteString(`\\`)
		case '\r':
			w.bw.WriteString(`\r`)
		case '\n':
			w.bw.WriteString(`\n`)
		case ':':
			w.bw.WriteString(`\c`)
		default:
			w.bw.WriteByte(c)
		}
	}
}

// WriteHeartBeat writes one heart-beat EOL.
func (w *Writer) WriteHeartBeat() error { return w.bw.WriteByte('\n') }

// Flush writes buffered frames to the stream.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns the number of bytes not yet flushed.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

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
	// The command and headers are appended straight into the buffer's
	// free space (one copy, no per-byte calls); append moves them to the
	// heap only when the headers outgrow what is left of the buffer.
	buf := w.bw.AvailableBuffer()
	buf = append(buf, f.Command...)
	buf = append(buf, '\n')
	haveLength := false
	for _, h := range f.Headers {
		if h.Key == "content-length" && !haveLength {
			haveLength = true
			buf = append(buf, "content-length:"...)
			buf = strconv.AppendInt(buf, int64(len(f.Body)), 10)
			buf = append(buf, '\n')
			continue
		}
		if esc {
			buf = appendEscaped(buf, h.Key)
			buf = append(buf, ':')
			buf = appendEscaped(buf, h.Value)
		} else {
			buf = append(buf, h.Key...)
			buf = append(buf, ':')
			buf = append(buf, h.Value...)
		}
		buf = append(buf, '\n')
	}
	if !haveLength && len(f.Body) > 0 {
		buf = append(buf, "content-length:"...)
		buf = strconv.AppendInt(buf, int64(len(f.Body)), 10)
		buf = append(buf, '\n')
	}
	buf = append(buf, '\n')
	w.bw.Write(buf)
	w.bw.Write(f.Body)
	return w.bw.WriteByte(0)
}

// escaped maps each octet a header escapes to the letter after its
// backslash (STOMP 1.2, "Value Encoding"); 0 for the others.
var escaped = [256]byte{'\\': '\\', '\r': 'r', '\n': 'n', ':': 'c'}

// appendEscaped appends s to buf with header escapes, copying the runs
// between escaped octets whole. It runs on every header of every RECEIPT
// and MESSAGE: a table lookup per octet rather than strings.ContainsAny,
// which builds its set on every call (issue 16).
func appendEscaped(buf []byte, s string) []byte {
	for {
		i := 0
		for i < len(s) && escaped[s[i]] == 0 {
			i++
		}
		buf = append(buf, s[:i]...)
		if i == len(s) {
			return buf
		}
		buf = append(buf, '\\', escaped[s[i]])
		s = s[i+1:]
	}
}

// WriteHeartBeat writes one heart-beat EOL.
func (w *Writer) WriteHeartBeat() error { return w.bw.WriteByte('\n') }

// Flush writes buffered frames to the stream.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns the number of bytes not yet flushed.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

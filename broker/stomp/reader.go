package stomp

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"unicode/utf8"
)

// Limits bound what a Reader accepts from a peer. A zero field takes its
// default from DefaultLimits.
type Limits struct {
	// MaxFrame bounds a whole frame: command, headers, body and NUL.
	MaxFrame int
	// MaxHeaders bounds the number of header lines.
	MaxHeaders int
	// MaxHeaderLine bounds one command or header line, without its EOL.
	MaxHeaderLine int
	// MaxBody bounds the body.
	MaxBody int
}

// DefaultLimits are generous for messaging and small enough that a few
// thousand connections cannot exhaust memory with half-sent headers.
func DefaultLimits() Limits {
	return Limits{
		MaxFrame:      16<<20 + 64<<10,
		MaxHeaders:    128,
		MaxHeaderLine: 8 << 10,
		MaxBody:       16 << 20,
	}
}

func (l Limits) normalize() Limits {
	d := DefaultLimits()
	if l.MaxFrame <= 0 {
		l.MaxFrame = d.MaxFrame
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = d.MaxHeaders
	}
	if l.MaxHeaderLine <= 0 {
		l.MaxHeaderLine = d.MaxHeaderLine
	}
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	return l
}

// Reader parses frames from a stream. It is not safe for concurrent use.
type Reader struct {
	br  *bufio.Reader
	lim Limits
	n   int // bytes of the current frame so far
	// recent holds the header values of the last frame by position: a
	// client repeats most of them frame after frame (destination,
	// content-type, content-length), so they are not allocated again.
	recent [8]string
}

// maxRecent bounds the values Reader.recent keeps.
const maxRecent = 256

// NewReader returns a Reader over r enforcing lim. Its buffer holds one
// maximal header line, so a line is parsed in place without copying.
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.normalize()
	size := 4096
	if lim.MaxHeaderLine+2 > size {
		size = lim.MaxHeaderLine + 2
	}
	return &Reader{br: bufio.NewReaderSize(r, size), lim: lim}
}

// Limits returns the limits in force.
func (r *Reader) Limits() Limits { return r.lim }

// Buffered returns how many bytes are already read from the stream but not
// yet parsed; a server uses it to batch frames that arrived together.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadFrame reads the next frame. It returns (nil, nil) for a heart-beat,
// io.EOF when the stream ends between frames, io.ErrUnexpectedEOF when it
// ends inside one, and a *ProtocolError for a framing violation.
func (r *Reader) ReadFrame() (*Frame, error) {
	r.n = 0
	line, err := r.readLine(true)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, nil // heart-beat
	}
	for _, c := range line {
		if c < 'A' || c > 'Z' {
			if !utf8.Valid(line) {
				return nil, protoErr(ErrInvalidUTF8, "in command")
			}
			return nil, protoErr(ErrMalformed, "bad command %.40q", line)
		}
	}
	// One allocation for the frame and room for the headers a client
	// usually sends (go-stomp's SEND with a receipt has 5), rather than
	// growing the slice from nil through 1, 2, 4 and 8 (4 of the ~7
	// allocations per SEND, callgrind, issue 16).
	fh := &frameWithHeaders{f: Frame{Command: internCommand(line)}}
	f := &fh.f
	f.Headers = fh.h[:0]
	esc := escapes(f.Command)
	contentLength := -1
	for {
		line, err = r.readLine(false)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if len(f.Headers) >= r.lim.MaxHeaders {
			return nil, protoErr(ErrTooManyHeaders, "more than %d headers", r.lim.MaxHeaders)
		}
		if !utf8.Valid(line) {
			return nil, protoErr(ErrInvalidUTF8, "header line %d", len(f.Headers)+1)
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil, protoErr(ErrMalformed, "header line without colon: %.40q", line)
		}
		if colon == 0 {
			return nil, protoErr(ErrMalformed, "header with empty name")
		}
		h, err := r.parseHeader(len(f.Headers), line[:colon], line[colon+1:], esc)
		if err != nil {
			return nil, err
		}
		if contentLength < 0 && h.Key == "content-length" {
			contentLength, err = r.checkLength(h.Value)
			if err != nil {
				return nil, err
			}
		}
		f.Headers = append(f.Headers, h)
	}
	if contentLength >= 0 {
		if contentLength > 0 {
			f.Body = make([]byte, contentLength)
			if _, err := io.ReadFull(r.br, f.Body); err != nil {
				return nil, eofInFrame(err)
			}
		}
		c, err := r.br.ReadByte()
		if err != nil {
			return nil, eofInFrame(err)
		}
		if c != 0 {
			return nil, protoErr(ErrMalformed, "no NUL after content-length bytes of body")
		}
		return f, nil
	}
	body, err := r.readToNUL()
	if err != nil {
		return nil, err
	}
	f.Body = body
	return f, nil
}

// readLine returns the next line without its EOL; the slice is valid until
// the next read. first marks the command line, where EOF is clean.
func (r *Reader) readLine(first bool) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || len(line) > r.lim.MaxHeaderLine+2:
		return nil, protoErr(ErrHeaderTooLong, "line longer than %d bytes", r.lim.MaxHeaderLine)
	case err == io.EOF && first && len(line) == 0 && r.n == 0:
		return nil, io.EOF
	case err != nil:
		return nil, eofInFrame(err)
	}
	r.n += len(line)
	if r.n > r.lim.MaxFrame {
		return nil, protoErr(ErrFrameTooLarge, "frame exceeds %d bytes", r.lim.MaxFrame)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > r.lim.MaxHeaderLine {
		return nil, protoErr(ErrHeaderTooLong, "line longer than %d bytes", r.lim.MaxHeaderLine)
	}
	if first && len(line) == 0 {
		r.n = 0 // heart-beats do not count towards the next frame
	}
	return line, nil
}

func (r *Reader) checkLength(v string) (int, error) {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, protoErr(ErrMalformed, "bad content-length %.40q", v)
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || (len(v) > 1 && v[0] == '0') {
		return 0, protoErr(ErrMalformed, "bad content-length %.40q", v)
	}
	if n > r.lim.MaxBody {
		return 0, protoErr(ErrBodyTooLarge, "content-length %d exceeds %d", n, r.lim.MaxBody)
	}
	if r.n+n+1 > r.lim.MaxFrame {
		return 0, protoErr(ErrFrameTooLarge, "frame exceeds %d bytes", r.lim.MaxFrame)
	}
	return n, nil
}

// readToNUL reads a body that has no content-length.
func (r *Reader) readToNUL() ([]byte, error) {
	var body []byte
	for {
		chunk, err := r.br.ReadSlice(0)
		if err != nil && err != bufio.ErrBufferFull {
			return nil, eofInFrame(err)
		}
		size := len(body) + len(chunk)
		if err == nil {
			size-- // the NUL
		}
		if size > r.lim.MaxBody {
			return nil, protoErr(ErrBodyTooLarge, "body exceeds %d bytes", r.lim.MaxBody)
		}
		if r.n+size+1 > r.lim.MaxFrame {
			return nil, protoErr(ErrFrameTooLarge, "frame exceeds %d bytes", r.lim.MaxFrame)
		}
		if err == nil {
			if size == 0 {
				return nil, nil
			}
			if body == nil {
				return append([]byte(nil), chunk[:len(chunk)-1]...), nil
			}
			return append(body, chunk[:len(chunk)-1]...), nil
		}
		body = append(body, chunk...)
	}
}

// frameWithHeaders is a Frame allocated with its first headers.
type frameWithHeaders struct {
	f Frame
	h [8]Header
}

func eofInFrame(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseHeader decodes header line i of a frame, k:v.
func (r *Reader) parseHeader(i int, k, v []byte, esc bool) (Header, error) {
	if !esc {
		return Header{internKey(k), internValue(v)}, nil
	}
	key, err := unescape(k, true)
	if err != nil {
		return Header{}, err
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return Header{key, r.value(i, v)}, nil
	}
	val, err := unescape(v, false)
	if err != nil {
		return Header{}, err
	}
	return Header{key, val}, nil
}

// value returns the header value b of header line i, as the string the
// previous frame had there when they are equal.
func (r *Reader) value(i int, b []byte) string {
	if i >= len(r.recent) {
		return internValue(b)
	}
	if s := r.recent[i]; s == string(b) {
		return s
	}
	s := internValue(b)
	if len(s) <= maxRecent {
		r.recent[i] = s
	}
	return s
}

// unescape decodes STOMP 1.2 header escapes.
func unescape(b []byte, key bool) (string, error) {
	i := bytes.IndexByte(b, '\\')
	if i < 0 {
		if key {
			return internKey(b), nil
		}
		return internValue(b), nil
	}
	out := make([]byte, 0, len(b))
	out = append(out, b[:i]...)
	for ; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(b) {
			return "", protoErr(ErrMalformed, "header ends in a lone backslash")
		}
		switch b[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 'c':
			out = append(out, ':')
		case '\\':
			out = append(out, '\\')
		default:
			return "", protoErr(ErrMalformed, "undefined escape \\%c in header", b[i])
		}
	}
	return string(out), nil
}

// internCommand, internKey and internValue return constant strings for
// common tokens, sparing an allocation per header on the hot path.
func internCommand(b []byte) string {
	switch string(b) {
	case SEND:
		return SEND
	case ACK:
		return ACK
	case NACK:
		return NACK
	case MESSAGE:
		return MESSAGE
	case RECEIPT:
		return RECEIPT
	case SUBSCRIBE:
		return SUBSCRIBE
	case CONNECT:
		return CONNECT
	case CONNECTED:
		return CONNECTED
	}
	return string(b)
}

func internKey(b []byte) string {
	switch string(b) {
	case "destination":
		return "destination"
	case "receipt":
		return "receipt"
	case "receipt-id":
		return "receipt-id"
	case "content-length":
		return "content-length"
	case "content-type":
		return "content-type"
	case "persistent":
		return "persistent"
	case "transaction":
		return "transaction"
	case "id":
		return "id"
	case "ack":
		return "ack"
	case "subscription":
		return "subscription"
	case "message-id":
		return "message-id"
	case "dedup-id":
		return "dedup-id"
	case "redelivered":
		return "redelivered"
	case "priority":
		return "priority"
	case "expires":
		return "expires"
	}
	return string(b)
}

func internValue(b []byte) string {
	switch string(b) {
	case "true":
		return "true"
	case "false":
		return "false"
	case "auto":
		return "auto"
	case "client":
		return "client"
	case "client-individual":
		return "client-individual"
	case "text/plain":
		return "text/plain"
	case "0":
		return "0"
	}
	return string(b)
}

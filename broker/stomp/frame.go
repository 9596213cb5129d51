// Package stomp reads and writes STOMP 1.2 frames.
//
// Wire format (STOMP 1.2, https://stomp.github.io/stomp-specification-1.2.html):
//
//	frame   = command EOL *( header EOL ) EOL *OCTET NUL *( EOL )
//	command = 1*( "A".."Z" )          ; unknown commands are the server's business
//	header  = name ":" value          ; split at the first colon
//	EOL     = [CR] LF
//
//	+---------+----+------------------+----+---------------------+-----+
//	| COMMAND | LF | name:value LF ...| LF | body (content-length| NUL |
//	|         |    | (escaped)        |    |  bytes, or to NUL)  |     |
//	+---------+----+------------------+----+---------------------+-----+
//
// An EOL where a command is expected is a heart-beat; ReadFrame returns a nil
// frame for it. Header names and values are escaped (\r \n \c \\) in every
// frame except CONNECT and CONNECTED, which keep 1.0 compatibility; any other
// backslash sequence is a protocol error. When a header is repeated, the
// first occurrence is the one that counts. A frame with a content-length
// header has exactly that many body octets followed by NUL; without it the
// body runs to the first NUL.
//
// The Reader enforces Limits (frame size, header count, header line length,
// body size) and rejects header lines that are not valid UTF-8, so a
// hostile peer cannot make the server allocate without bound.
package stomp

// Commands of STOMP 1.2.
const (
	CONNECT     = "CONNECT"
	STOMP       = "STOMP"
	CONNECTED   = "CONNECTED"
	SEND        = "SEND"
	SUBSCRIBE   = "SUBSCRIBE"
	UNSUBSCRIBE = "UNSUBSCRIBE"
	ACK         = "ACK"
	NACK        = "NACK"
	BEGIN       = "BEGIN"
	COMMIT      = "COMMIT"
	ABORT       = "ABORT"
	DISCONNECT  = "DISCONNECT"
	MESSAGE     = "MESSAGE"
	RECEIPT     = "RECEIPT"
	ERROR       = "ERROR"
)

// Header is one frame header, kept in wire order.
type Header struct {
	Key, Value string
}

// Frame is one STOMP frame. Body is nil when the frame has no body.
type Frame struct {
	Command string
	Headers []Header
	Body    []byte
}

// Lookup returns the value of the first header named key.
func (f *Frame) Lookup(key string) (string, bool) {
	for i := range f.Headers {
		if f.Headers[i].Key == key {
			return f.Headers[i].Value, true
		}
	}
	return "", false
}

// Get returns the value of the first header named key, or "".
func (f *Frame) Get(key string) string {
	v, _ := f.Lookup(key)
	return v
}

// Add appends a header, even if one of that name exists.
func (f *Frame) Add(key, value string) {
	f.Headers = append(f.Headers, Header{key, value})
}

// Set replaces the value of the first header named key, or adds it.
func (f *Frame) Set(key, value string) {
	for i := range f.Headers {
		if f.Headers[i].Key == key {
			f.Headers[i].Value = value
			return
		}
	}
	f.Add(key, value)
}

// Del removes every header named key.
func (f *Frame) Del(key string) {
	out := f.Headers[:0]
	for _, h := range f.Headers {
		if h.Key != key {
			out = append(out, h)
		}
	}
	f.Headers = out
}

// escapes reports whether headers of a frame with this command are escaped;
// CONNECT and CONNECTED are not (STOMP 1.2, "Value Encoding").
func escapes(command string) bool {
	return command != CONNECT && command != CONNECTED
}

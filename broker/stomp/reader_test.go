package stomp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func read(t *testing.T, in string, lim Limits) ([]*Frame, error) {
	t.Helper()
	r := NewReader(strings.NewReader(in), lim)
	var frames []*Frame
	for {
		f, err := r.ReadFrame()
		if err != nil {
			if err == io.EOF {
				return frames, nil
			}
			return frames, err
		}
		frames = append(frames, f) // nil for a heart-beat
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []*Frame
	}{
		{"send", "SEND\ndestination:/queue/a\n\nhello\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"destination", "/queue/a"}}, Body: []byte("hello")}}},
		{"crlf", "SEND\r\ndestination:/queue/a\r\n\r\nhi\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"destination", "/queue/a"}}, Body: []byte("hi")}}},
		{"heartbeats between frames", "\n\r\nACK\nid:1\n\n\x00\n\n",
			[]*Frame{nil, nil, {Command: ACK, Headers: []Header{{"id", "1"}}}, nil, nil}},
		{"content-length with NUL in body", "SEND\ncontent-length:3\n\na\x00b\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"content-length", "3"}}, Body: []byte("a\x00b")}}},
		{"escapes", "SEND\nk\\cx:a\\nb\\rc\\\\d\\ce\n\n\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"k:x", "a\nb\rc\\d:e"}}}}},
		{"connect not unescaped", "CONNECT\npasscode:a\\cb:c\n\n\x00",
			[]*Frame{{Command: CONNECT, Headers: []Header{{"passcode", "a\\cb:c"}}}}},
		{"repeated header kept in order", "SEND\nfoo:1\nfoo:2\n\n\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"foo", "1"}, {"foo", "2"}}}}},
		{"empty value", "SEND\nfoo:\n\n\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"foo", ""}}}}},
		{"values change between frames", "SEND\na:1\nb:x\n\n\x00SEND\na:1\nb:y\nc:z\n\n\x00SEND\nb:1\n\n\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"a", "1"}, {"b", "x"}}},
				{Command: SEND, Headers: []Header{{"a", "1"}, {"b", "y"}, {"c", "z"}}},
				{Command: SEND, Headers: []Header{{"b", "1"}}}}},
		{"utf8", "SEND\nnom:café\n\n\x00",
			[]*Frame{{Command: SEND, Headers: []Header{{"nom", "café"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(t, tt.in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	small := Limits{MaxFrame: 200, MaxHeaders: 3, MaxHeaderLine: 40, MaxBody: 100}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"lowercase command", "send\n\n\x00", ErrMalformed},
		{"header without colon", "SEND\nfoo\n\n\x00", ErrMalformed},
		{"empty header name", "SEND\n:x\n\n\x00", ErrMalformed},
		{"undefined escape", "SEND\nfoo:a\\tb\n\n\x00", ErrMalformed},
		{"lone backslash", "SEND\nfoo:a\\\n\n\x00", ErrMalformed},
		{"bad content-length", "SEND\ncontent-length:x\n\n\x00", ErrMalformed},
		{"negative content-length", "SEND\ncontent-length:-1\n\n\x00", ErrMalformed},
		{"no NUL after counted body", "SEND\ncontent-length:2\n\nabc\x00", ErrMalformed},
		{"invalid utf8 header", "SEND\nfoo:\xff\xfe\n\n\x00", ErrInvalidUTF8},
		{"invalid utf8 command", "\xffSEND\n\n\x00", ErrInvalidUTF8},
		{"too many headers", "SEND\na:1\nb:2\nc:3\nd:4\n\n\x00", ErrTooManyHeaders},
		{"long header line", "SEND\nfoo:" + strings.Repeat("x", 60) + "\n\n\x00", ErrHeaderTooLong},
		{"long line no EOL", "SEND\nfoo:" + strings.Repeat("x", 5000), ErrHeaderTooLong},
		{"big content-length", "SEND\ncontent-length:101\n\n", ErrBodyTooLarge},
		{"big body to NUL", "SEND\n\n" + strings.Repeat("x", 101) + "\x00", ErrBodyTooLarge},
		{"big frame", "SEND\na:" + strings.Repeat("x", 38) + "\nb:" + strings.Repeat("x", 38) +
			"\nc:" + strings.Repeat("x", 38) + "\n\n" + strings.Repeat("y", 90) + "\x00", ErrFrameTooLarge},
		{"torn in headers", "SEND\ndestination:/qu", io.ErrUnexpectedEOF},
		{"torn in body", "SEND\n\nabc", io.ErrUnexpectedEOF},
		{"torn in counted body", "SEND\ncontent-length:10\n\nabc", io.ErrUnexpectedEOF},
		{"torn before NUL", "SEND\ncontent-length:3\n\nabc", io.ErrUnexpectedEOF},
		{"torn command", "SEN", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(t, tt.in, small)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var pe *ProtocolError
			if errors.As(err, &pe) && pe.Detail == "" {
				t.Fatalf("protocol error without detail: %v", err)
			}
		})
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	frames := []*Frame{
		{Command: MESSAGE, Headers: []Header{{"a:b", "x\ny\r\\"}}, Body: []byte("p\x00q")},
		{Command: CONNECTED, Headers: []Header{{"version", "1.2"}}},
		{Command: RECEIPT, Headers: []Header{{"receipt-id", "7"}, {"content-length", "99"}}},
	}
	for _, f := range frames {
		if err := w.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteHeartBeat(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatal("writer flushed before Flush")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "MESSAGE\na\\cb:x\\ny\\r\\\\\ncontent-length:3\n\np\x00q\x00" +
		"CONNECTED\nversion:1.2\n\n\x00" +
		"RECEIPT\nreceipt-id:7\ncontent-length:0\n\n\x00\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
	if err := w.WriteFrame(&Frame{Command: CONNECTED, Headers: []Header{{"x", "a\nb"}}}); err == nil {
		t.Fatal("CONNECTED header with newline written")
	}
}

// TestWriteFrameBufferSizes writes frames through writers of every small
// buffer size, so headers straddle the buffer's end, and checks the octets
// are those of a writer with room to spare.
func TestWriteFrameBufferSizes(t *testing.T) {
	frames := []*Frame{
		{Command: MESSAGE, Headers: []Header{{"subscription", "0"}, {"message-id", "ID:x-1"},
			{"destination", "/queue/a"}, {"a:b", "x\ny\r\\"}, {"content-length", "1"}}, Body: []byte("p\x00q")},
		{Command: CONNECTED, Headers: []Header{{"version", "1.2"}, {"server", strings.Repeat("s", 100)}}},
		{Command: RECEIPT, Headers: []Header{{"receipt-id", strings.Repeat(":", 70)}}},
		{Command: MESSAGE, Body: bytes.Repeat([]byte("b"), 300)},
	}
	var want bytes.Buffer
	w := NewWriter(&want)
	for _, f := range frames {
		if err := w.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	for size := 1; size <= 200; size++ {
		var got bytes.Buffer
		w := NewWriterSize(&got, size)
		for _, f := range frames {
			if err := w.WriteFrame(f); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("size %d: got %q\nwant %q", size, got.Bytes(), want.Bytes())
		}
	}
}

// TestRoundTrip checks write(parse(x)) re-parses equal on the seed corpus.
func TestRoundTrip(t *testing.T) {
	for _, in := range seeds() {
		checkRoundTrip(t, []byte(in))
	}
}

// checkRoundTrip parses data, and for every frame checks that writing it
// and parsing the result gives the same frame (with content-length added
// when the writer had to add it).
func checkRoundTrip(t *testing.T, data []byte) {
	lim := Limits{MaxFrame: 1 << 16, MaxHeaders: 32, MaxHeaderLine: 1024, MaxBody: 1 << 15}
	r := NewReader(bytes.NewReader(data), lim)
	for range 64 {
		f, err := r.ReadFrame()
		if err != nil {
			var pe *ProtocolError
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
				t.Fatalf("unexpected error kind %T: %v", err, err)
			}
			return
		}
		if f == nil {
			continue
		}
		if len(f.Headers) > lim.MaxHeaders || len(f.Body) > lim.MaxBody {
			t.Fatalf("limits not enforced: %d headers, %d body", len(f.Headers), len(f.Body))
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.WriteFrame(f); err != nil {
			t.Fatalf("write %+v: %v", f, err)
		}
		w.Flush()
		// A writer whose buffer is smaller than the frame's headers
		// writes the same octets.
		var small bytes.Buffer
		sw := NewWriterSize(&small, 16)
		if err := sw.WriteFrame(f); err != nil {
			t.Fatalf("small writer %+v: %v", f, err)
		}
		sw.Flush()
		if !bytes.Equal(small.Bytes(), buf.Bytes()) {
			t.Fatalf("small writer wrote %q, want %q", small.Bytes(), buf.Bytes())
		}
		g, err := NewReader(&buf, Limits{MaxFrame: 1 << 20, MaxHeaders: 64, MaxHeaderLine: 1 << 12, MaxBody: 1 << 16}).ReadFrame()
		if err != nil {
			t.Fatalf("re-parse of %q: %v", buf.Bytes(), err)
		}
		want := *f
		if _, ok := f.Lookup("content-length"); !ok && len(f.Body) > 0 {
			want.Headers = append(append([]Header(nil), f.Headers...), Header{"content-length", itoa(len(f.Body))})
		}
		if !reflect.DeepEqual(g, &want) {
			t.Fatalf("round trip changed frame\n got %+v\nwant %+v", g, &want)
		}
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

package stomp_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/lossbench/lossbench/broker/stomp"
)

func ExampleReader() {
	in := "\nSEND\r\ndestination:/queue/a\r\nkey:a\\cb\r\n\r\nhello\x00"
	r := stomp.NewReader(strings.NewReader(in), stomp.Limits{MaxBody: 1024})
	for {
		f, err := r.ReadFrame()
		if err != nil {
			fmt.Println(err)
			return
		}
		if f == nil {
			fmt.Println("heart-beat")
			continue
		}
		fmt.Println(f.Command, f.Get("destination"), f.Get("key"), string(f.Body))
	}
	// Output:
	// heart-beat
	// SEND /queue/a a:b hello
	// EOF
}

func ExampleWriter() {
	var buf bytes.Buffer
	w := stomp.NewWriter(&buf)
	w.WriteFrame(&stomp.Frame{Command: stomp.MESSAGE, Headers: []stomp.Header{{Key: "k", Value: "a:b"}}, Body: []byte("hi")})
	w.Flush() // nothing reaches buf before Flush
	fmt.Printf("%q\n", buf.String())
	// Output:
	// "MESSAGE\nk:a\\cb\ncontent-length:2\n\nhi\x00"
}

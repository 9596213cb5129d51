package server

import (
	"strconv"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/broker/store/memstore"
)

// TestRawCRLFAndHeartbeats: CRLF line ends, heart-beat EOLs between
// frames, escaped headers and a NUL inside a counted body all pass
// through intact.
func TestRawCRLFAndHeartbeats(t *testing.T) {
	_, addr := startBroker(t, nil, Options{})
	r := rawDial(t, addr)
	r.write("\r\n\nCONNECT\r\naccept-version:1.1,1.2\r\nhost:x\r\n\r\n\x00\r\n")
	if f := r.expect("CONNECTED"); f.Get("version") != "1.2" {
		t.Fatalf("version %q", f.Get("version"))
	}
	r.write("\n\r\nSUBSCRIBE\r\nid:a\r\ndestination:/queue/crlf\r\n\r\n\x00\n")
	r.write("SEND\r\ndestination:/queue/crlf\r\nk\\cey:v\\nal\\\\ue\r\ncontent-length:3\r\nreceipt:r\r\n\r\na\x00b\x00\r\n\r\n")
	var msg, rcpt bool
	for !msg || !rcpt {
		f := r.read()
		if f == nil {
			t.Fatal("closed")
		}
		switch f.Command {
		case "RECEIPT":
			rcpt = f.Get("receipt-id") == "r"
		case "MESSAGE":
			msg = true
			if string(f.Body) != "a\x00b" || f.Get("k:ey") != "v\nal\\ue" || f.Get("subscription") != "a" {
				t.Fatalf("MESSAGE %v %q", f.Headers, f.Body)
			}
		default:
			t.Fatalf("got %s", f.Command)
		}
	}
}

// TestDedupWithinOneBatch pipelines a SEND and its retry in one write:
// both are receipted, one is stored.
func TestDedupWithinOneBatch(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{})
	r := rawDial(t, addr)
	r.connect()
	one := "SEND\ndestination:/queue/dd\npersistent:true\ndedup-id:x1\nreceipt:%s\n\nbody\x00"
	r.write(strings.Replace(one, "%s", "1", 1) + strings.Replace(one, "%s", "2", 1))
	for _, want := range []string{"1", "2"} {
		if f := r.expect("RECEIPT"); f.Get("receipt-id") != want {
			t.Fatalf("receipt %q, want %q", f.Get("receipt-id"), want)
		}
	}
	if n := st.Stats()["live_messages"]; n != 1 {
		t.Fatalf("stored %v, want 1", n)
	}
	if d, _ := queueDepth(b, "/queue/dd"); d != 1 {
		t.Fatalf("depth %d", d)
	}
}

// TestPipelinedSendsBatched: SENDs that arrive together are written to
// the store as one batch, and each still gets its receipt in order.
func TestPipelinedSendsBatched(t *testing.T) {
	st := memstore.New()
	_, addr := startBroker(t, st, Options{})
	r := rawDial(t, addr)
	r.connect()
	var sb strings.Builder
	for i := range 100 {
		sb.WriteString("SEND\ndestination:/queue/pipe\npersistent:true\nreceipt:" + strconv.Itoa(i) + "\n\nm\x00")
	}
	r.write(sb.String())
	for i := range 100 {
		if f := r.expect("RECEIPT"); f.Get("receipt-id") != strconv.Itoa(i) {
			t.Fatalf("receipt %q, want %d", f.Get("receipt-id"), i)
		}
	}
	if w := st.Stats()["writes_total"]; w >= 100 {
		t.Fatalf("%v store writes for 100 pipelined sends: not batched", w)
	}
}

package workload_test

import (
	"net"
	"testing"

	"github.com/lossbench/lossbench/chaos/workload"
	"github.com/lossbench/lossbench/chaos/workload/fakebroker"
	"github.com/lossbench/lossbench/chaos/workload/protocoltest"
)

// TestSTOMPConformance runs the protocol suite on STOMP against the
// in-memory fakebroker, which cannot be killed and keep its messages: the
// broker-lost case is skipped here (TestUnknownIsRetriedWithSameID covers
// STOMP's unknown outcome).
func TestSTOMPConformance(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := fakebroker.New()
	go func() { _ = b.Serve(ln) }()
	t.Cleanup(b.Close)
	protocoltest.Run(t, protocoltest.Target{Protocol: workload.STOMP{}, Endpoint: workload.Endpoint{Addr: ln.Addr().String()}})
}

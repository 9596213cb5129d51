package docker

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// commandBroker is refbroker run as an arbitrary command line, its
// addresses and data folder from the placeholders.
var commandBroker = scenario.Broker{Kind: scenario.Command,
	Command: []string{"/refbroker", "--listen", "{listen}", "--admin", "{admin}", "--store", "journal", "--data", "{data}"}}

// TestCommandBrokerNeedsImage: a command broker whose node names no
// image is refused before any engine call, with ErrUnsupported (so
// --driver auto runs it on local) saying what to add.
func TestCommandBrokerNeedsImage(t *testing.T) {
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: commandBroker}}}
	d, err := New(t.Context(), driver.Config{Topology: topo, Dir: t.TempDir()})
	if d != nil || !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("New = %v, %v; want nil and ErrUnsupported", d, err)
	}
	for _, want := range []string{"node a1", "image:", "/refbroker", "--driver local"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestCommandBrokerInImage: a command broker runs its command line in
// the image its node names (here the refbroker image made locally, its
// binary run as a plain command), on the node's data volume: ready once
// its STOMP port answers, it serves clients through their link, and a
// message it acknowledged is still there after a kill and a restart.
func TestCommandBrokerInImage(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	img, err := RefBrokerImage(ctx, cli, ImageDir())
	if err != nil {
		t.Fatal(err)
	}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Image: img.Ref, Broker: commandBroker}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "command"})
	if got := containerImage(t, d, "a1"); got != img.Ref {
		t.Fatalf("a1 runs image %q, want %s", got, img.Ref)
	}
	st, err := d.nodes["a1"].inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(st.Config.Entrypoint), st.Config.Cmd...)
	want := []string{"/refbroker", "--listen", "0.0.0.0:" + stompPort, "--admin", "0.0.0.0:" + adminPort, "--store", "journal", "--data", d.nodes["a1"].data}
	if !slices.Equal(argv, want) {
		t.Fatalf("a1's container runs %q, want the command with its placeholders filled, %q", argv, want)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	c, err := stompConn(d, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("/queue/cmd", "text/plain", []byte("kept"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatalf("send to a1: %v", err)
	}
	c.Disconnect()
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatalf("restart after the kill: %v", err)
	}
	c, err = stompConn(d, "a1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/cmd", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, sub, "a1", "kept")
}

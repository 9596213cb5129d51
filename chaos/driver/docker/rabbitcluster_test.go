package docker

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestRabbitMQCluster: three rabbitmq nodes in containers, on two sites
// (so their Erlang distribution goes over the cluster's own network),
// form one cluster, and a durable quorum queue declared through a1's
// client proxy has a member on each. a1 killed (SIGKILL), a message is
// still confirmed through a2 by the two left; a1 started again is a
// running member again and the queue's three members are online; both
// messages are there; Close leaves nothing. (No power cut here: one
// within lazyfs's 30 s writeback window of a node's first boot leaves
// RabbitMQ's feature_flags file empty and the node unbootable, as the
// README says; the quorum3 power-cut scenario measures a member's cut.)
func TestRabbitMQCluster(t *testing.T) {
	cli := engine(t)
	if err := peers.RabbitMQAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if testing.Short() {
		t.Skip("-short: three Erlang nodes take a minute or two to start")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	run := "rabbitq3-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	node := func(name, site string) scenario.Node {
		return scenario.Node{Name: name, Site: site, Broker: scenario.Broker{Kind: scenario.RabbitMQ, Store: "quorum"}}
	}
	topo := scenario.Topology{
		Sites: []scenario.Site{{Name: "a"}, {Name: "b"}, {Name: "clients"}},
		Links: []scenario.Link{{A: "clients", B: "a"}, {A: "clients", B: "b"}, {A: "a", B: "b"}},
		Nodes: []scenario.Node{node("a1", "a"), node("a2", "a"), node("b_3", "b")},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}, {Name: "a2-data", Node: "a2"}, {Name: "b3-data", Node: "b_3"}},
	}
	d, err := New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "rabbitmq-cluster", Dir: t.TempDir(), Log: t.Logf})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if d.rabbit == nil || !d.rabbit.own {
		t.Fatal("no network of the cluster's own for nodes on two sites")
	}
	t0 := time.Now()
	for _, n := range []string{"a1", "a2", "b_3"} {
		if err := d.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("cluster of 3 started in %s", time.Since(t0).Truncate(time.Millisecond))
	want := "a1@a1,a2@a2,b_3@b-3"
	ctl := func(on string, args ...string) string {
		t.Helper()
		n := d.nodes[on]
		out, err := n.exec(ctx, append([]string{peers.RabbitMQCtl, "-n", n.rabbitmq().NodeName(), "-q"}, args...))
		if err != nil {
			t.Fatalf("rabbitmqctl %v on %s: %v\n%s", args, on, err, out)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n") // eval then prints its value
		return first
	}
	running := func(on string) string {
		return ctl(on, "eval", `io:format("~s~n", [lists:join(",", lists:sort([atom_to_list(N) || N <- rabbit_nodes:all_running()]))]).`)
	}
	// members is "members|online" of the queue, each sorted, seen from on.
	const queue = "lossbench-q3"
	members := func(on string) string {
		return ctl(on, "eval", `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"`+queue+`">>)),
			Info = rabbit_amqqueue:info(Q, [members, online]),
			S = fun(K) -> lists:join(",", lists:sort([atom_to_list(N) || N <- proplists:get_value(K, Info)])) end,
			io:format("~s|~s~n", [S(members), S(online)]).`)
	}
	// until polls seen until it returns want (what says what it is).
	until := func(what, want string, seen func() string) {
		t.Helper()
		for {
			got := seen()
			if got == want {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %q, want %q", what, got, want)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	until("running members seen from b_3", want, func() string { return running("b_3") })
	addr := func(n string) string {
		a, err := d.ClientAddr(n)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	withChannel(t, addr("a1"), func(ch *amqp.Channel) {
		if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			t.Fatal(err)
		}
	})
	all := want + "|" + want
	until("queue members|online seen from a2", all, func() string { return members("a2") })
	publishConfirmed(t, addr("a1"), queue, "one")
	rejoined := func(what, node string) {
		t.Helper()
		if err := d.Start(ctx, node); err != nil {
			t.Fatal(err)
		}
		until(what+" "+node+": running members and queue members|online seen from a2", want+" "+all,
			func() string { return running("a2") + " " + members("a2") })
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if d.Running("a1") {
		t.Fatal("a1 still running after Kill")
	}
	// The two left elect a new leader; a publish while they have none
	// may be nacked (refused, not lost), so the test waits for a leader
	// among the online members, then expects the confirm.
	until("queue leader on an online member other than a1, seen from a2", "true", func() string {
		return ctl("a2", "eval", `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"`+queue+`">>)),
			Info = rabbit_amqqueue:info(Q, [leader, online]),
			L = proplists:get_value(leader, Info),
			io:format("~p~n", [L =/= 'a1@a1' andalso lists:member(L, proplists:get_value(online, Info))]).`)
	})
	publishConfirmed(t, addr("a2"), queue, "two") // a2 and b_3 are a majority
	rejoined("kill -9", "a1")
	var got []string
	withChannel(t, addr("a1"), func(ch *amqp.Channel) {
		for range 2 {
			m, ok, err := ch.Get(queue, true)
			if err != nil || !ok {
				t.Fatalf("get after the restarts: %v, %v (so far %q)", ok, err, got)
			}
			got = append(got, string(m.Body))
		}
	})
	if slices.Sort(got); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("messages %q, want one and two", got)
	}
	closeClean(t, cli, d, run)
}

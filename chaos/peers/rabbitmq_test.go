package peers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRabbitMQClusterSettings: a cluster's node writes the shared cookie
// where Erlang reads it (HOME/.erlang.cookie, owner-only, rewritten on
// every start), runs without a port mapper of its own, and joins its seed
// with stop_app, join_cluster, start_app; a lone node keeps its own epmd
// and makes its own cookie.
func TestRabbitMQClusterSettings(t *testing.T) {
	dir := t.TempDir()
	r := RabbitMQNode{Name: "a-2", Listen: "127.0.0.1:5672", EPMDPort: 4400, DistPort: 4401,
		Dir: dir, Data: filepath.Join(dir, "data"), Cookie: "SECRET", SharedEPMD: true}
	for i := 0; i < 2; i++ {
		if err := r.Write(); err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	cookie := filepath.Join(dir, "home", ".erlang.cookie")
	b, err := os.ReadFile(cookie)
	if err != nil || string(b) != "SECRET" {
		t.Fatalf("cookie %q, %v", b, err)
	}
	if st, _ := os.Stat(cookie); st.Mode().Perm() != 0o400 {
		t.Errorf("cookie mode %v, want 0400", st.Mode().Perm())
	}
	if got := r.Argv(); !slices.Equal(got, []string{RabbitMQServer}) {
		t.Errorf("argv %q: want the server alone", got)
	}
	if r.NodeName() != "a_2@localhost" || !slices.Contains(r.Env(), "RABBITMQ_NODENAME=a_2@localhost") {
		t.Errorf("node name %s, env %q", r.NodeName(), r.Env())
	}
	join := r.JoinArgv("a1@localhost")
	var steps []string
	for _, argv := range join {
		if argv[0] != RabbitMQCtl || argv[1] != "-n" || argv[2] != "a_2@localhost" {
			t.Errorf("join step %q: not rabbitmqctl -n a_2@localhost", argv)
		}
		steps = append(steps, strings.Join(argv[3:], " "))
	}
	if want := []string{"stop_app", "join_cluster a1@localhost", "start_app"}; !slices.Equal(steps, want) {
		t.Errorf("join steps %q, want %q", steps, want)
	}

	lone := RabbitMQNode{Name: "b1", EPMDPort: 4402, Dir: t.TempDir()}
	if err := lone.Write(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(lone.Dir, "home", ".erlang.cookie")); !os.IsNotExist(err) {
		t.Errorf("lone node: a cookie file written (%v)", err)
	}
	if argv := strings.Join(lone.Argv(), " "); !strings.Contains(argv, "epmd -address 127.0.0.1 -port 4402 &") {
		t.Errorf("lone node argv %q: no epmd of its own", argv)
	}
}

// TestRabbitMQHost: a node with Host (a container's hostname, which the
// other nodes resolve) is named after it and listens for Erlang's port
// mapper and distribution on every interface; without Host, on
// 127.0.0.1 only as localhost.
func TestRabbitMQHost(t *testing.T) {
	r := RabbitMQNode{Name: "a-2", EPMDPort: 4369, DistPort: 25672, Dir: "/rabbitmq", Host: "a-2", Cookie: "SECRET"}
	if r.NodeName() != "a_2@a-2" {
		t.Errorf("node name %s, want a_2@a-2", r.NodeName())
	}
	for _, kv := range r.Env() {
		if strings.Contains(kv, "127,0,0,1") || strings.HasPrefix(kv, "ERL_EPMD_ADDRESS=") {
			t.Errorf("env %q: bound to 127.0.0.1 with a Host", kv)
		}
	}
	if argv := strings.Join(r.Argv(), " "); strings.Contains(argv, "-address") || !strings.Contains(argv, "epmd -port 4369 &") {
		t.Errorf("argv %q: want its own epmd on every interface", argv)
	}
	r.Host = ""
	if r.NodeName() != "a_2@localhost" || !slices.Contains(r.Env(), "ERL_EPMD_ADDRESS=127.0.0.1") {
		t.Errorf("without Host: node name %s, env %q", r.NodeName(), r.Env())
	}
}

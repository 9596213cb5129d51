package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/drivertest"
	"github.com/lossbench/lossbench/chaos/fault"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// engine connects to the Docker engine or skips the test.
func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := Client(context.Background())
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leftovers lists the containers, volumes and networks labelled with run.
func leftovers(t *testing.T, cli *client.Client, run string) []string {
	ctx := context.Background()
	f := make(client.Filters).Add("label", LabelRun+"="+run)
	var left []string
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		left = append(left, "container "+firstName(c.Names))
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Items {
		left = append(left, "volume "+v.Name)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		left = append(left, "network "+n.Name)
	}
	return left
}

// TestConformance runs the driver suite on refbroker containers. The
// default (make test) runs a short subset; LOSSBENCH_DOCKER_SUITE=all runs
// every part.
func TestConformance(t *testing.T) {
	cli := engine(t)
	s := drivertest.Setup{Serves: true,
		New: func(t *testing.T, cfg driver.Config) (driver.Driver, error) { return Open(t.Context(), cfg) },
		Leftovers: func(t *testing.T, cfg driver.Config) []string {
			return leftovers(t, cli, cfg.RunID)
		}}
	// The database part runs on every kind whose image this machine
	// makes (from its Debian packages: seconds, then cached); a kind it
	// cannot make is skipped, saying why.
	for _, kind := range []scenario.DatabaseKind{scenario.Postgres, scenario.MariaDB} {
		if _, err := DatabaseImage(t.Context(), cli, kind); err != nil {
			t.Logf("database part without %s: %v", kind, err)
			continue
		}
		s.Databases = append(s.Databases, kind)
	}
	if os.Getenv("LOSSBENCH_DOCKER_SUITE") != "all" {
		s.Only = []string{"Kill", "CutHeal", "WipeDisk", "Database", "Exits", "Close"}
	}
	drivertest.Run(t, s)
}

// childEnv makes the test binary a harness that starts a node and waits
// to be killed (TestReapAfterSIGKILL).
const childEnv = "LOSSBENCH_DOCKER_CHILD_RUN"

func TestMain(m *testing.M) {
	if run := os.Getenv(childEnv); run != "" {
		os.Exit(childHarness(run))
	}
	os.Exit(m.Run())
}

// childHarness opens a driver for run, starts node a1, says "ready" and
// waits for its SIGKILL.
func childHarness(run string) int {
	dir, err := os.MkdirTemp("", "lossbench-docker-child")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}}}
	cfg := driver.Config{Topology: topo, RunID: run, Scenario: "sigkill", Dir: dir}
	if lazyfs.Available() == nil {
		cfg.PowerCutNodes = []string{"a1"} // its data on lazyfs, whose server dies with the harness
	}
	d, err := New(context.Background(), cfg)
	if err == nil {
		err = d.Start(context.Background(), "a1")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if d != nil {
			d.Close()
		}
		return 2
	}
	fmt.Println("ready")
	time.Sleep(5 * time.Minute)
	return 1
}

// TestReapAfterSIGKILL: a harness killed with SIGKILL leaves its
// container, volume and network (no Close ran), and the lazyfs mount of
// its node's data (its server gone); the next driver's Open removes them
// (Reap), as the Docker API and /proc/self/mountinfo then show.
func TestReapAfterSIGKILL(t *testing.T) {
	cli := engine(t)
	run := "sigkill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+run)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child harness: %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	left := leftovers(t, cli, run)
	if len(left) < 3 {
		t.Fatalf("after SIGKILL the run left %q, want its container, volume and network", left)
	}
	mounts := lazyMounts(t, run)
	if lazyfs.Available() == nil && len(mounts) != 1 {
		t.Fatalf("after SIGKILL the run left lazyfs mounts %q, want a1's", mounts)
	}
	t.Logf("left by the killed harness: %q, mounts %q", left, mounts)
	did, err := Reap(context.Background(), cli)
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	t.Logf("reap: %q", did)
	if left := leftovers(t, cli, run); len(left) > 0 {
		t.Fatalf("after Reap the killed run still has %q", left)
	}
	if m := lazyMounts(t, run); len(m) > 0 {
		t.Fatalf("after Reap the killed run still has lazyfs mounts %q", m)
	}
}

// TestPruneImages: of three tags built in a repo of the test's own (so
// that no other checkout's refbroker image is touched), PruneImages keeps
// the named one and the one a container uses, and removes the third.
func TestPruneImages(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	repo := "lossbench/prunetest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var refs []string
	for i := range 3 {
		ref := fmt.Sprintf("%s:t%d", repo, i)
		df := fmt.Sprintf("FROM scratch\nCOPY f /f%d\n", i)
		if _, err := buildImage(ctx, cli, ref, []imageFile{{"Dockerfile", 0o644, []byte(df)}, {"f", 0o644, []byte(ref)}}); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		t.Cleanup(func() { cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true}) })
	}
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Image: refs[1], Config: &container.Config{Cmd: []string{"/none"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true}) })
	did, err := PruneImages(ctx, cli, repo, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: %q", did)
	for i, want := range []bool{true, true, false} {
		_, err := cli.ImageInspect(ctx, refs[i])
		if there := err == nil; there != want {
			t.Errorf("%s there=%v after the prune, want %v (%v)", refs[i], there, want, err)
		}
	}
	if len(did) != 2 || !strings.Contains(strings.Join(did, "\n"), "kept "+refs[1]+": in use") {
		t.Errorf("prune said %q, want %s removed and %s kept in use", did, refs[2], refs[1])
	}
}

// TestNamedImage: Config.BrokerImage (--refbroker-image) that the engine
// lacks is an error naming it, with nothing pulled or left behind; one it
// has (a tag of the built image) is what the node's container runs.
func TestNamedImage(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}}}}
	run := "named-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	missing := "lossbench/no-such-image:" + run
	d, err := New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "named", Dir: t.TempDir(), BrokerImage: missing})
	if d != nil {
		d.Close()
	}
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "never pulled") {
		t.Fatalf("New with a missing image: %v, want an error naming %s", err, missing)
	}
	if left := leftovers(t, cli, run); len(left) > 0 {
		t.Fatalf("a missing image left %q", left)
	}
	built, err := RefBrokerImage(ctx, cli, ImageDir())
	if err != nil {
		t.Fatal(err)
	}
	named := "lossbench/named-test:" + run
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: built.Ref, Target: named}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ImageRemove(context.Background(), named, client.ImageRemoveOptions{}) })
	d, err = New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "named", Dir: t.TempDir(), BrokerImage: named})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if img := containerImage(t, d, "a1"); img != named || d.Image().Ref != named {
		t.Fatalf("node a1 runs image %q (driver says %q), want %s", img, d.Image().Ref, named)
	}
}

// containerImage is the image node name's container was made from.
func containerImage(t *testing.T, d *Driver, name string) string {
	t.Helper()
	st, err := d.nodes[name].inspect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Config.Image
}

// TestMachineLostReplacesContainer: WipeNode (machine-lost, site-lost)
// removes the node's container and its own volume and makes both anew
// (the new container starts, on an empty disk), while a disk it shares
// with another node keeps its files and the other node its container.
func TestMachineLostReplacesContainer(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	rb := scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: rb}, {Name: "a2", Site: "a", Broker: rb}},
		Disks: []scenario.Disk{{Name: "a1-own", Node: "a1"}, {Name: "both", Node: "a1", Nodes: []string{"a1", "a2"}}}}
	run := "machine-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	d, err := New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "machine", Dir: t.TempDir()})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	marker := func(disk string) string {
		res, err := cli.VolumeInspect(ctx, d.disks[disk].volume, client.VolumeInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(res.Volume.Mountpoint, "marker")
	}
	for _, disk := range []string{"a1-own", "both"} {
		if err := os.WriteFile(marker(disk), []byte(disk), 0o644); err != nil {
			t.Skipf("skipping: the engine's volumes are not on this machine: %v", err)
		}
	}
	old1, old2 := d.nodes["a1"].id, d.nodes["a2"].id
	if err := d.WipeNode(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if d.nodes["a1"].id == old1 {
		t.Fatalf("a1 still has container %.12s after its machine was lost", old1)
	}
	if _, err := cli.ContainerInspect(ctx, old1, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("a1's old container %.12s is still there", old1)
	}
	if d.nodes["a2"].id != old2 {
		t.Errorf("a2's container changed when a1's machine was lost")
	}
	if _, err := os.Stat(marker("a1-own")); !os.IsNotExist(err) {
		t.Errorf("a1's own disk kept its file: %v", err)
	}
	if b, err := os.ReadFile(marker("both")); err != nil || string(b) != "both" {
		t.Errorf("the shared disk lost its file: %q %v", b, err)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatalf("the replaced machine does not start: %v", err)
	}
}

// TestSiteNetworkFaults: a partition of the whole site, and site-lost,
// leave the site's containers (replaced ones for site-lost) without an
// interface on the site's network; heal and recovery connect them again,
// and the node serves STOMP through the clients' proxy.
func TestSiteNetworkFaults(t *testing.T) {
	engine(t)
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}}}}
	run := "sitelost-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	d, err := New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "sitelost", Dir: t.TempDir()})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	attached := func() bool {
		st, err := d.nodes["a1"].inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.NetworkSettings.Networks[d.nets["a"].netName] != nil
	}
	ipBefore := d.nodes["a1"].ip
	if err := d.Cut(ctx, "a", driver.Any); err != nil {
		t.Fatal(err)
	}
	if attached() {
		t.Fatalf("in a partition of site a, a1 is still on network %s", d.nets["a"].netName)
	}
	if err := d.Heal(ctx, "a", driver.Any); err != nil {
		t.Fatal(err)
	}
	if !attached() {
		t.Fatalf("after the partition healed a1 is not on network %s", d.nets["a"].netName)
	}
	t.Logf("a1's address: %s before the partition, %s after", ipBefore, d.nodes["a1"].ip)
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("CONNECT\naccept-version:1.2\nhost:a\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); line != "CONNECTED\n" {
		t.Fatalf("a1 through the clients' proxy after the heal: %q %v", line, err)
	}
	f := &fault.SiteLost{Site: "a", Members: []string{"a1"}}
	if err := f.Inject(ctx, d); err != nil {
		t.Fatal(err)
	}
	if attached() {
		t.Fatalf("after site-lost a1 is still on network %s", d.nets["a"].netName)
	}
	if err := f.Recover(ctx, d); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if !attached() || !d.Running("a1") {
		t.Fatalf("after recovery a1 attached=%v running=%v", attached(), d.Running("a1"))
	}
}

// TestNodeImage: a node's own image (scenario key image:) is the one its
// container runs, the other nodes keep the refbroker image built here;
// one the engine lacks is an error naming the node and the image, and
// nothing is left.
func TestNodeImage(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	run := "nodeimg-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo := func(image string) scenario.Topology {
		return scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
			Nodes: []scenario.Node{
				{Name: "a1", Site: "a", Image: image, Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "memory"}},
				{Name: "a2", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "memory"}}}}
	}
	missing := "lossbench/no-such-image:" + run
	d, err := New(ctx, driver.Config{Topology: topo(missing), RunID: run, Scenario: "nodeimg", Dir: t.TempDir()})
	if d != nil {
		d.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "node a1") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("New with node a1 on a missing image: %v, want an error naming a1 and %s", err, missing)
	}
	if left := leftovers(t, cli, run); len(left) > 0 {
		t.Fatalf("a missing node image left %q", left)
	}
	built, err := RefBrokerImage(ctx, cli, ImageDir())
	if err != nil {
		t.Fatal(err)
	}
	own := "lossbench/node-image-test:" + run
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: built.Ref, Target: own}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ImageRemove(context.Background(), own, client.ImageRemoveOptions{}) })
	d, err = New(ctx, driver.Config{Topology: topo(own), RunID: run, Scenario: "nodeimg", Dir: t.TempDir()})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for node, want := range map[string]string{"a1": own, "a2": built.Ref} {
		st, err := d.nodes[node].inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Config.Image != want {
			t.Errorf("node %s runs image %q, want %s", node, st.Config.Image, want)
		}
	}
	if !strings.Contains(strings.Join(d.Info().Notes, "\n"), "node a1: image "+own) {
		t.Errorf("Info notes %q do not name a1's image", d.Info().Notes)
	}
}

// TestSizedDisk: a disk with a size is a tmpfs volume of that size that
// outlives its node's container (the broker's journal is still on it
// after a kill); disk-full fills it, so the broker's next segment cannot
// be made and it fails stop (exit 1, by itself), and FreeDisk gives the
// space back.
func TestSizedDisk(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	const size = 8 << 20
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal",
			Args: []string{"--segment-size", "4KiB"}}}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1", Size: size}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "sized"})
	res, err := cli.VolumeInspect(ctx, d.disks["a1-data"].volume, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := res.Volume.Mountpoint
	free := func() (total, avail int64) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Skipf("skipping: the engine's volumes are not on this machine: %v", err)
		}
		if st.Type != 0x01021994 { // TMPFS_MAGIC
			t.Fatalf("volume folder %s is on filesystem type %#x, want a tmpfs", dir, st.Type)
		}
		return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
	}
	if total, _ := free(); total != size {
		t.Fatalf("the disk's tmpfs has %d bytes, want %d", total, size)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if total, avail := free(); total != size || avail == total {
		t.Fatalf("after a1's container was killed its disk has %d of %d bytes free: the journal is gone", avail, total)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.FillDisk(ctx, "a1-data"); err != nil {
		t.Fatal(err)
	}
	if _, avail := free(); avail >= 4096 {
		t.Fatalf("after FillDisk %d bytes are free", avail)
	}
	c, err := stompConn(d, "a1")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1024)
	for i := 0; i < 100 && err == nil; i++ {
		err = c.Send("/queue/full", "text/plain", body, stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true"))
	}
	if err == nil {
		t.Fatal("a1 acknowledged 100 KiB on a full disk with 4 KiB segments")
	}
	var exits []driver.Exit
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(exits) < 2; time.Sleep(10 * time.Millisecond) {
		exits = d.Exits()
	}
	if len(exits) != 2 || exits[1].ByHarness || exits[1].Status != 1 {
		t.Fatalf("exits %+v, want a1 failing stop (status 1) on the full disk\n%s", exits, d.nodes["a1"].tail(ctx))
	}
	if err := d.FreeDisk(ctx, "a1-data"); err != nil {
		t.Fatal(err)
	}
	if _, avail := free(); avail < size/2 {
		t.Fatalf("after FreeDisk only %d bytes are free", avail)
	}
}

// TestNeedsUnsupported: a scenario with what the docker driver does not
// run (a Galera cluster from a named image, db-data-lost on a server of a
// replicated database) is refused with ErrUnsupported (so --driver auto
// runs it on local), before any engine call.
func TestNeedsUnsupported(t *testing.T) {
	node := scenario.Node{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}}
	base := scenario.Topology{Sites: []scenario.Site{{Name: "a"}}, Nodes: []scenario.Node{node}}
	galera := base
	galera.Databases = []scenario.Database{{Name: "db", Site: "a", Kind: scenario.MariaDB, Replicas: []scenario.Replica{{Name: "db-b", Site: "a"}}}}
	pgPair := base
	pgPair.Databases = []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres, Replicas: []scenario.Replica{{Name: "pg-b", Site: "a", Sync: true}}}}
	namedGalera := driver.Config{Topology: galera, DatabaseImages: map[string]string{"mariadb": "mariadb:10.11"}}
	for _, c := range []struct {
		name string
		cfg  driver.Config
		want string
	}{
		{"galera from a named image", namedGalera, "mariadb image made here"},
		{"db-data-lost on a galera node", driver.Config{Topology: galera, WipeDatabases: []string{"db-b"}}, "Galera node"},
		{"db-data-lost on a postgres standby", driver.Config{Topology: pgPair, WipeDatabases: []string{"pg"}}, "replicated PostgreSQL"},
	} {
		c.cfg.Dir = t.TempDir()
		d, err := New(context.Background(), c.cfg)
		if d != nil {
			d.Close()
		}
		if d != nil || !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, %v; want nil and an ErrUnsupported naming %s", c.name, d, err, c.want)
		}
	}
}

// openDriver opens a driver for cfg in a fresh run (its RunID, made of
// cfg.Scenario, and Dir) and closes it when the test ends.
func openDriver(t *testing.T, cfg driver.Config) *Driver {
	t.Helper()
	cfg.RunID = cfg.Scenario + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg.Dir = t.TempDir()
	d, err := New(t.Context(), cfg)
	if d != nil {
		t.Cleanup(func() { d.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestExitStatus: a scenario expecting exit statuses runs (New accepts
// NeedExitStatus), and a broker that ends by itself is reported with its
// container's exit code: refbroker refusing an unknown flag exits 2, not
// by the harness; the run's end (Close) of a running node is by the
// harness.
func TestExitStatus(t *testing.T) {
	engine(t)
	ctx := t.Context()
	rb := scenario.Broker{Kind: scenario.RefBroker, Store: "memory"}
	bad := rb
	bad.Args = []string{"--no-such-flag"}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: bad}, {Name: "a2", Site: "a", Broker: rb}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "exits", Needs: []string{driver.NeedExitStatus}})
	if err := d.Start(ctx, "a1"); err == nil || !strings.Contains(err.Error(), "exited (code 2)") {
		t.Fatalf("Start of a broker given an unknown flag: %v, want its exit code 2", err)
	}
	if err := d.Start(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	var exits []driver.Exit
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(exits) == 0; time.Sleep(10 * time.Millisecond) {
		exits = d.Exits()
	}
	if len(exits) != 1 || exits[0].Node != "a1" || exits[0].Status != 2 || exits[0].ByHarness || exits[0].Signal != "" {
		t.Fatalf("exits %+v, want a1 ending by itself with status 2", exits)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	exits = d.Exits()
	if len(exits) != 2 || exits[1].Node != "a2" || !exits[1].ByHarness {
		t.Fatalf("exits after Close %+v, want a2's end by the harness second", exits)
	}
}

// TestRestartArgs: a scenario with restart_args runs (New accepts
// NeedRestartArgs); StartWithArgs makes the node's container anew with
// the arguments, on the same volume (a file on it stays) and name, and
// the next Start drops them again.
func TestRestartArgs(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "rargs", Needs: []string{driver.NeedRestartArgs}})
	res, err := cli.VolumeInspect(ctx, d.disks["a1-data"].volume, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(res.Volume.Mountpoint, "marker")
	if err := os.WriteFile(marker, []byte("kept"), 0o644); err != nil {
		t.Skipf("skipping: the engine's volumes are not on this machine: %v", err)
	}
	cmd := func() (string, []string) {
		st, err := d.nodes["a1"].inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Name, st.Config.Cmd
	}
	name0, cmd0 := cmd()
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	extra := []string{"--fsync", "always"}
	if err := d.StartWithArgs(ctx, "a1", extra); err != nil {
		t.Fatal(err)
	}
	name1, cmd1 := cmd()
	if name1 != name0 || !slices.Equal(cmd1, append(slices.Clone(cmd0), extra...)) {
		t.Fatalf("after StartWithArgs: container %s command %q, want %s with %q appended to %q", name1, cmd1, name0, extra, cmd0)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "kept" {
		t.Fatalf("the disk's file after the container was made anew: %q %v", b, err)
	}
	if err := d.Stop(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, cmd2 := cmd(); !slices.Equal(cmd2, cmd0) {
		t.Fatalf("a plain Start after StartWithArgs runs %q, want %q", cmd2, cmd0)
	}
}

// stompConn opens a STOMP session on node's client address, its
// connection closed after 30 s (a receipt that never comes fails the
// test instead of hanging it).
func stompConn(d *Driver, node string) (*stomp.Conn, error) {
	addr, err := d.ClientAddr(node)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := stomp.Connect(nc, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		nc.Close()
	}
	return c, err
}

// TestReplication: replicated master/slave between containers in two
// sites, each reaching the other's replication listener ({repl.NAME})
// through the a-b link proxies: a message a1 acknowledged (min-replicas
// 1: after b1 fsynced it) is served by b1 once a1 is killed and b1 takes
// over.
func TestReplication(t *testing.T) {
	engine(t)
	ctx := t.Context()
	node := func(name, site, peer string) scenario.Node {
		return scenario.Node{Name: name, Site: site, Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal",
			Args: []string{"--lease-owner", name, "--replication-listen", "{repl}", "--peer", "{repl." + peer + "}",
				"--min-replicas", "1", "--lease-ttl", "2s", "--lease-renew", "500ms", "--lease-margin", "500ms"}}}
	}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}, {Name: "b"}}, Links: []scenario.Link{{A: "a", B: "b"}},
		Nodes: []scenario.Node{node("a1", "a", "b1"), node("b1", "b", "a1")}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "repl"})
	for _, n := range []string{"a1", "b1"} {
		if err := d.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	argv := strings.Join(d.Info().Brokers["a1"], " ")
	var viaProxy bool
	for _, l := range d.px.Links() {
		viaProxy = viaProxy || (l.Port == "repl" && l.FromNode == "a1" && l.ToNode == "b1" && strings.Contains(argv, "--peer "+l.Listen))
	}
	if !viaProxy {
		t.Fatalf("a1's command line %q does not name its replication proxy to b1", argv)
	}
	conn := func(node string) (*stomp.Conn, error) { return stompConn(d, node) }
	c, err := conn("a1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("/queue/repl", "text/plain", []byte("replicated"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatalf("send to a1: %v", err)
	}
	c.Disconnect()
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for c, err = conn("b1"); err != nil; c, err = conn("b1") {
		if time.Now().After(deadline) {
			t.Fatalf("b1 does not serve after a1 was killed: %v\n%s", err, d.nodes["b1"].tail(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/repl", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, sub, "b1", "replicated")
}

// receive waits for one message on sub, node's subscription, and wants
// body.
func receive(t *testing.T, sub *stomp.Subscription, node, body string) {
	t.Helper()
	select {
	case m := <-sub.C:
		if m.Err != nil || string(m.Body) != body {
			t.Fatalf("%s serves %v %q, want %q", node, m.Err, m.Body, body)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s does not serve %q", node, body)
	}
}

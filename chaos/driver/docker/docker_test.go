package docker

import (
	"context"
	"os"
	"testing"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/drivertest"
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
	if os.Getenv("LOSSBENCH_DOCKER_SUITE") != "all" {
		s.Only = []string{"Kill", "CutHeal", "WipeDisk", "Close"}
	}
	drivertest.Run(t, s)
}

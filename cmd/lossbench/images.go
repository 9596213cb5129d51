package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver/docker"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

func init() {
	register(command{
		name:    "images",
		usage:   "[--prune]",
		summary: "build the container images the docker driver runs",
		help: `Builds, when missing, the images the docker driver runs. refbroker: a static
binary (CGO_ENABLED=0 go build, inside the lossbench module) in a FROM scratch
image tagged lossbench/refbroker:<first 12 hex digits of its SHA-256>.
PostgreSQL and MariaDB: lossbench/postgres and lossbench/mariadb, each made
from this machine's Debian packages (postgresql-15, mariadb-server-core: the
files dpkg -L lists, the libraries they load, a data folder initialised by
initdb or mariadb-install-db; docker import), tagged by the hash of the
recipe and the packages' versions. nats-server (the peer kind nats): a static
nats-server (CGO_ENABLED=0 go install of its pinned module version, cached) in
a FROM scratch image, lossbench/nats-server:<hash>. RabbitMQ (the peer kind
rabbitmq), when Debian's rabbitmq-server is installed (make peers):
lossbench/rabbitmq, the files of it and of the packages it depends on (Erlang),
made like the database images. ActiveMQ (the peer kind activemq), when
Debian's activemq is installed: lossbench/activemq, the same of activemq and
openjdk-17-jre-headless (symlinks they list that resolve nowhere are left out). Nothing is pulled. Prints each image, its
ID, size and build time (0s when it was there already); a database or
nats-server image that cannot be made here (its packages are not installed,
no module proxy) is reported and the others go on. The engine is the one DOCKER_HOST names, else the local
socket. With --prune it then removes every other tag of these repositories
(images labelled lossbench.role=image, one per source change or package
upgrade) and prints each; a tag a container still uses is kept and said so.
Exit 0 when every image is there (and the prune removed what it could), 2
when no engine answers, a build fails or a removal fails.`,
		run: runImages,
	})
}

func runImages(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	prune := fs.Bool("prune", false, "remove every other lossbench/refbroker, lossbench/postgres, lossbench/mariadb, lossbench/nats-server, lossbench/rabbitmq and lossbench/activemq tag built here (not those a container uses)")
	if _, code, ok := cmd.parse(fs, args); !ok {
		return code
	}
	cli, err := docker.Client(ctx)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench images: %v\n", err)
		return exitBad
	}
	defer cli.Close()
	t0 := time.Now()
	img, err := docker.RefBrokerImage(ctx, cli, docker.ImageDir())
	if err != nil {
		fmt.Fprintf(st.err, "lossbench images: %v\n", err)
		return exitBad
	}
	fmt.Fprintf(st.out, "%s\t%s\t%.1f MB\tbuilt in %s (%s with go build)\n", img.Ref, img.ID, float64(img.Size)/1e6,
		img.Build.Truncate(time.Millisecond), time.Since(t0).Truncate(time.Millisecond))
	keep := map[string]string{docker.ImageRepo: img.Ref}
	code := exitOK
	for _, kind := range []scenario.DatabaseKind{scenario.Postgres, scenario.MariaDB} {
		dimg, err := docker.DatabaseImage(ctx, cli, kind)
		if err != nil {
			fmt.Fprintf(st.err, "lossbench images: %v\n", err)
			code = exitBad
			continue
		}
		keep[strings.SplitN(dimg.Ref, ":", 2)[0]] = dimg.Ref
		fmt.Fprintf(st.out, "%s\t%s\t%.1f MB\tbuilt in %s\n", dimg.Ref, dimg.ID, float64(dimg.Size)/1e6, dimg.Build.Truncate(time.Millisecond))
	}
	if nimg, err := docker.NATSImage(ctx, cli, docker.ImageDir()); err != nil {
		fmt.Fprintf(st.err, "lossbench images: %v\n", err)
		code = exitBad
	} else {
		keep[docker.NATSImageRepo] = nimg.Ref
		fmt.Fprintf(st.out, "%s\t%s\t%.1f MB\tbuilt in %s\n", nimg.Ref, nimg.ID, float64(nimg.Size)/1e6, nimg.Build.Truncate(time.Millisecond))
	}
	for _, p := range []struct {
		repo      string
		available func() error
		build     func(context.Context, *client.Client) (docker.Image, error)
	}{
		{docker.RabbitMQRepo, peers.RabbitMQAvailable, docker.RabbitMQImage},
		{docker.ActiveMQRepo, peers.ActiveMQAvailable, docker.ActiveMQImage},
	} {
		if p.available() != nil {
			continue
		}
		if img, err := p.build(ctx, cli); err != nil {
			fmt.Fprintf(st.err, "lossbench images: %v\n", err)
			code = exitBad
		} else {
			keep[p.repo] = img.Ref
			fmt.Fprintf(st.out, "%s\t%s\t%.1f MB\tbuilt in %s\n", img.Ref, img.ID, float64(img.Size)/1e6, img.Build.Truncate(time.Millisecond))
		}
	}
	if !*prune {
		return code
	}
	for _, repo := range []string{docker.ImageRepo, docker.PostgresRepo, docker.MariaDBRepo, docker.NATSImageRepo, docker.RabbitMQRepo, docker.ActiveMQRepo} {
		did, err := docker.PruneImages(ctx, cli, repo, keep[repo])
		for _, line := range did {
			fmt.Fprintf(st.out, "%s\n", line)
		}
		if err != nil {
			fmt.Fprintf(st.err, "lossbench images --prune: %v\n", err)
			code = exitBad
		}
	}
	return code
}

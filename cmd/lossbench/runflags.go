package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/lossbench/lossbench/chaos/driver/drivers"
	"github.com/lossbench/lossbench/chaos/runner"
)

// runFlags are the flags lossbench run and lossbench matrix share: where
// the topologies run, from which executable and images, and how long a
// send waits.
type runFlags struct {
	driver, brokerBin, brokerImage, pgImage, mariaImage, rabbitImage, amqImage *string
	sendTimeout                                                                *time.Duration
}

func addRunFlags(fs *flag.FlagSet) *runFlags {
	return &runFlags{
		driver:      fs.String("driver", drivers.Auto, "where the topologies run: "+drivers.Help()),
		brokerBin:   fs.String("broker-bin", "", "refbroker executable (default: refbroker next to lossbench, else go build)"),
		brokerImage: fs.String("refbroker-image", "", "docker driver: run refbroker nodes from this image `REF`, which the engine must have (never pulled; default: lossbench/refbroker:<hash> built from this source)"),
		pgImage:     fs.String("postgres-image", "", "docker driver: run PostgreSQL databases from this image `REF` (e.g. postgres:15), which the engine must have (never pulled; default: lossbench/postgres:<hash> made from this machine's Debian packages)"),
		mariaImage:  fs.String("mariadb-image", "", "docker driver: run MariaDB databases from this image `REF` (e.g. mariadb:10.11), which the engine must have (never pulled; default: lossbench/mariadb:<hash> made from this machine's Debian packages)"),
		rabbitImage: fs.String("rabbitmq-image", "", "docker driver: run rabbitmq nodes from this image `REF`, laid out like Debian's rabbitmq-server (/usr/lib/rabbitmq/bin), which the engine must have (never pulled; default: lossbench/rabbitmq:<hash> made from this machine's Debian packages)"),
		amqImage:    fs.String("activemq-image", "", "docker driver: run activemq nodes from this image `REF`, laid out like Debian's activemq (/usr/share/activemq, java on the PATH), which the engine must have (never pulled; default: lossbench/activemq:<hash> made from this machine's Debian packages)"),
		sendTimeout: fs.Duration("send-timeout", 5*time.Second, "how long a send waits for its receipt before its outcome is unknown"),
	}
}

// options chooses the driver (printing which and why) and checks the
// images given against it: runner.Options with Driver, SendTimeout,
// BrokerImage, DatabaseImages and PeerImages set, or false after saying on st.err,
// prefixed by who, what is wrong.
func (f *runFlags) options(ctx context.Context, st *stdio, who string) (runner.Options, bool) {
	name, why, err := drivers.Choose(ctx, *f.driver, *f.brokerImage)
	if err == nil {
		err = drivers.Check(ctx, name, *f.brokerImage)
	}
	if err != nil {
		fmt.Fprintf(st.err, "%s: --driver %s: %v\n", who, *f.driver, err)
		return runner.Options{}, false
	}
	dbImages, peerImages := map[string]string{}, map[string]string{}
	for _, im := range []struct {
		flag, kind, ref string
		to              map[string]string
	}{
		{"refbroker-image", "", *f.brokerImage, nil},
		{"postgres-image", "postgres", *f.pgImage, dbImages},
		{"mariadb-image", "mariadb", *f.mariaImage, dbImages},
		{"rabbitmq-image", "rabbitmq", *f.rabbitImage, peerImages},
		{"activemq-image", "activemq", *f.amqImage, peerImages},
	} {
		if im.ref == "" {
			continue
		}
		if name == "local" {
			fmt.Fprintf(st.err, "%s: --%s %s: the local driver runs no images (driver local: %s)\n", who, im.flag, im.ref, why)
			return runner.Options{}, false
		}
		if im.to != nil {
			im.to[im.kind] = im.ref
		}
	}
	fmt.Fprintf(st.err, "%s: driver %s (%s)\n", who, name, why)
	if *f.driver == drivers.Auto {
		// Each scenario still falls back to the next driver when this
		// one cannot run its topology (a server database on docker).
		name = drivers.Auto
	}
	return runner.Options{Driver: name, SendTimeout: *f.sendTimeout, BrokerImage: *f.brokerImage, DatabaseImages: dbImages, PeerImages: peerImages}, true
}

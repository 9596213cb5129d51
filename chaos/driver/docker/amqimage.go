package docker

import (
	"context"
	"slices"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/peers"
)

// ActiveMQ image. Made like the RabbitMQ image (rabbitimage.go) of this
// machine's Debian packages, which make peers installs for the local
// driver: every file of activemq, of the JRE it runs on
// (openjdk-17-jre-headless: activemq depends on default-jre-headless or
// any java runtime, and the first is not installed) and of the installed
// packages they depend on, recursively (the jars under /usr/share/java,
// the JVM's libraries), with the ldd closure of their programs. The
// symlinks those packages list that resolve nowhere (links to jars of
// packages only recommended) are left out. The JVM's trust store
// (/etc/ssl/certs/java/cacerts, made at install and owned by no package)
// comes in through the JRE's link to it when it exists; the broker does
// not use TLS. /usr/bin/java, an alternatives link, is added as on the
// host. The driver starts peers.ActiveMQNode's command line in it, as
// root, with the node's generated configuration in a bind-mounted folder
// and KahaDB on the node's data volume.
const ActiveMQRepo = "lossbench/activemq"

// activeMQRoots are the packages the image starts from; activeMQSkip the
// dependencies it leaves out (not needed to run the broker).
var (
	activeMQRoots = []string{"activemq", "openjdk-17-jre-headless", "dash", "coreutils"}
	activeMQSkip  = []string{"adduser", "openssl", "debconf", "perl-base", "init-system-helpers", "dpkg", "tar", "ca-certificates"}
)

// activeMQJDBCRoots are the packages of the JDBC store's driver and
// pool (peers.PostgresJDBCJar, CommonsDBCPJar, CommonsPoolJar), in the
// image when installed here: activemq links to the pool's jars from
// lib/optional, and a node on store jdbc links ACTIVEMQ_BASE/lib to the
// driver's jar.
var activeMQJDBCRoots = []string{"libpostgresql-jdbc-java", "libcommons-dbcp-java", "libcommons-pool-java"}

// ActiveMQImage returns the image of Debian's ActiveMQ Classic, building
// it when missing (tens of seconds); with the JDBC store's jars when
// this machine has them (peers.ActiveMQJDBCAvailable).
func ActiveMQImage(ctx context.Context, cli *client.Client) (Image, error) {
	if err := peers.ActiveMQAvailable(); err != nil {
		return Image{}, err
	}
	roots := activeMQRoots
	if peers.ActiveMQJDBCAvailable() == nil {
		roots = append(slices.Clip(roots), activeMQJDBCRoots...)
	}
	pkgs, err := dependsClosure(ctx, roots, activeMQSkip)
	if err != nil {
		return Image{}, err
	}
	return recipeImage(ctx, cli, dbRecipe{kind: "activemq", repo: ActiveMQRepo, packages: pkgs, skip: skipDocs,
		extra:   []string{"/usr/bin/java"},
		files:   []imageFile{{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")}, {"etc/group", 0o644, []byte("root:x:0:\n")}},
		changes: []string{"ENV LANG=C.UTF-8", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"}})
}

package docker

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/peers"
)

// RabbitMQ image. Like the database images (dbimage.go) it is made of
// this machine's Debian packages, which make peers installs for the
// local driver: every file of rabbitmq-server and of the installed
// packages it depends on, recursively (Erlang's runtime and
// applications, the C library, the shell and the few tools its start
// scripts run), with the ldd closure of their programs. Packages that
// only its init scripts and tools need (adduser, logrotate, python3,
// socat, ...) are left out. The image has no entrypoint of its own: the
// driver starts peers.RabbitMQNode's command line in it, as root, with
// the node's generated configuration in a bind-mounted folder and its
// Mnesia and message stores on the node's data volume. Tagged by the
// recipe and the packages' versions like the database images.
const RabbitMQRepo = "lossbench/rabbitmq"

// rabbitRoots are the packages the image starts from; rabbitSkip the
// dependencies it leaves out (not needed to run the server).
var (
	rabbitRoots = []string{"rabbitmq-server", "dash", "coreutils", "sed", "grep"}
	rabbitSkip  = []string{"adduser", "logrotate", "lsb-base", "python3", "socat", "openssl", "debconf", "perl-base", "init-system-helpers", "dpkg", "tar"}
)

// RabbitMQImage returns the image of Debian's RabbitMQ server, building
// it when missing (tens of seconds).
func RabbitMQImage(ctx context.Context, cli *client.Client) (Image, error) {
	if err := peers.RabbitMQAvailable(); err != nil {
		return Image{}, err
	}
	pkgs, err := dependsClosure(ctx, rabbitRoots, rabbitSkip)
	if err != nil {
		return Image{}, err
	}
	return recipeImage(ctx, cli, dbRecipe{kind: "rabbitmq", repo: RabbitMQRepo, packages: pkgs, skip: skipDocs,
		files:   []imageFile{{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")}, {"etc/group", 0o644, []byte("root:x:0:\n")}},
		changes: []string{"ENV LANG=C.UTF-8", "ENV LC_ALL=C.UTF-8"}})
}

// dependsClosure is roots and every installed package they depend on
// (Depends and Pre-Depends, the first of alternatives), recursively,
// but for skip and what only skipped packages pull in; sorted.
func dependsClosure(ctx context.Context, roots, skip []string) ([]string, error) {
	seen := map[string]bool{}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Depends},${Pre-Depends}", p).Output()
		if err != nil || !strings.HasPrefix(string(out), "ii") {
			if slices.Contains(roots, p) {
				return nil, errors.New("docker: peer image: Debian package " + p + " is not installed on this machine (make peers installs it)")
			}
			continue // an alternative or virtual package not installed
		}
		seen[p] = true
		_, deps, _ := strings.Cut(string(out), "|")
		for _, d := range strings.Split(deps, ",") {
			d, _, _ = strings.Cut(d, "|")
			d, _, _ = strings.Cut(strings.TrimSpace(d), " ")
			d = strings.TrimSuffix(d, ":any")
			if d != "" && !seen[d] && !slices.Contains(skip, d) {
				queue = append(queue, d)
			}
		}
	}
	pkgs := make([]string, 0, len(seen))
	for p := range seen {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	return pkgs, nil
}

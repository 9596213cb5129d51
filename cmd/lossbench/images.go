package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lossbench/lossbench/chaos/driver/docker"
)

func init() {
	register(command{
		name:    "images",
		usage:   "",
		summary: "build the container images the docker driver runs",
		help: `Builds, when missing, the refbroker image the docker driver runs: a static
binary (CGO_ENABLED=0 go build, inside the lossbench module) in a FROM scratch
image tagged lossbench/refbroker:<first 12 hex digits of its SHA-256>. Nothing
is pulled. Prints the image, its ID, size and build time (0s when it was
there already). The engine is the one DOCKER_HOST names, else the local
socket. Exit 0 when the image is there, 2 when no engine answers or the
build fails.`,
		run: runImages,
	})
}

func runImages(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
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
	return exitOK
}

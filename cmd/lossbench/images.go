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
		usage:   "[--prune]",
		summary: "build the container images the docker driver runs",
		help: `Builds, when missing, the refbroker image the docker driver runs: a static
binary (CGO_ENABLED=0 go build, inside the lossbench module) in a FROM scratch
image tagged lossbench/refbroker:<first 12 hex digits of its SHA-256>. Nothing
is pulled. Prints the image, its ID, size and build time (0s when it was
there already). The engine is the one DOCKER_HOST names, else the local
socket. With --prune it then removes every other lossbench/refbroker tag
(images labelled lossbench.role=image, one per source change) and prints
each; a tag a container still uses is kept and said so. Exit 0 when the
image is there (and the prune removed what it could), 2 when no engine
answers, the build fails or a removal fails.`,
		run: runImages,
	})
}

func runImages(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	prune := fs.Bool("prune", false, "remove every other lossbench/refbroker tag built here (not those a container uses)")
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
	if !*prune {
		return exitOK
	}
	did, err := docker.PruneImages(ctx, cli, docker.ImageRepo, img.Ref)
	for _, line := range did {
		fmt.Fprintf(st.out, "%s\n", line)
	}
	if err != nil {
		fmt.Fprintf(st.err, "lossbench images --prune: %v\n", err)
		return exitBad
	}
	return exitOK
}

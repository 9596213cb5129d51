package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// RefBrokerPackage is what go build compiles into the refbroker image.
const RefBrokerPackage = "github.com/lossbench/lossbench/cmd/refbroker"

// ImageRepo is the repository of the refbroker images this driver builds;
// the tag is the first 12 hex digits of the binary's SHA-256.
const ImageRepo = "lossbench/refbroker"

// Image is a built image: its reference and ID, and what building it
// took (0 when it was there already).
type Image struct {
	Ref   string        `json:"ref"`
	ID    string        `json:"id"`
	Size  int64         `json:"size"`
	Build time.Duration `json:"build_ns,omitempty"`
	// Dangling counts the symlinks its packages list that resolve
	// nowhere on this machine, left out of an image built here.
	Dangling int `json:"dangling,omitempty"`
}

// RefBrokerImage returns the image of refbroker as this source tree
// builds it: go build with CGO_ENABLED=0 (a static binary, go's build
// cache makes it quick when nothing changed) into dir, tagged by the
// binary's content hash; the image is built only when that tag is
// missing. It is never pulled: there is no registry.
func RefBrokerImage(ctx context.Context, cli *client.Client, dir string) (Image, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("docker: refbroker image: %w", err)
	}
	bin := filepath.Join(dir, "refbroker-static")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, RefBrokerPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("docker: build refbroker for its image (CGO_ENABLED=0 go build %s, run inside the lossbench module): %v\n%s",
			RefBrokerPackage, err, strings.TrimSpace(string(b)))
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return Image{}, fmt.Errorf("docker: refbroker image: %w", err)
	}
	return staticImage(ctx, cli, ImageRepo, "refbroker", body)
}

// NamedImage is the image ref as the engine has it (--refbroker-image).
// An image the engine does not have is an error naming it: it is never
// pulled (there may be no registry, and a pull can hang).
func NamedImage(ctx context.Context, cli *client.Client, ref string) (Image, error) {
	in, err := cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return Image{}, fmt.Errorf("docker: image %s: not on the engine, and images are never pulled: build or load it there first (docker build, docker load, docker pull)", ref)
	}
	if err != nil {
		return Image{}, fmt.Errorf("docker: image %s: %w", ref, err)
	}
	return Image{Ref: ref, ID: in.ID, Size: in.Size}, nil
}

// imageFile is a file of an image's build context.
type imageFile struct {
	name string
	mode int64
	body []byte
}

// buildImage builds files (a Dockerfile among them) into the image ref,
// labelled LabelRole=image, and returns it with the time the build took.
func buildImage(ctx context.Context, cli *client.Client, ref string, files []imageFile) (Image, error) {
	t0 := time.Now()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body))}); err != nil {
			return Image{}, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return Image{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Image{}, err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true,
		Labels: map[string]string{LabelRole: "image"}})
	if err != nil {
		return Image{}, fmt.Errorf("docker: build image %s: %w", ref, err)
	}
	defer res.Body.Close()
	if err := buildErr(res.Body); err != nil {
		return Image{}, fmt.Errorf("docker: build image %s: %w", ref, err)
	}
	in, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return Image{}, fmt.Errorf("docker: image %s after its build: %w", ref, err)
	}
	return Image{Ref: ref, ID: in.ID, Size: in.Size, Build: time.Since(t0)}, nil
}

// PruneImages removes the tags of repo that this driver built (labelled
// LabelRole=image) other than keep, and each image left without a tag.
// An image a container still uses (a running harness's node) is left and
// reported, not forced. It returns one line per tag removed or kept.
// Pruning is explicit (lossbench images --prune), never part of a run:
// another checkout's harness may be about to start the tag it built.
func PruneImages(ctx context.Context, cli *client.Client, repo, keep string) ([]string, error) {
	f := make(client.Filters).Add("label", LabelRole+"=image").Add("reference", repo)
	list, err := cli.ImageList(ctx, client.ImageListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: prune images: %w", err)
	}
	var did []string
	var errs []error
	for _, im := range list.Items {
		for _, tag := range im.RepoTags {
			if tag == keep || !strings.HasPrefix(tag, repo+":") {
				continue
			}
			if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
				if cerrdefs.IsConflict(err) {
					did = append(did, fmt.Sprintf("kept %s: in use (%v)", tag, err))
					continue
				}
				errs = append(errs, fmt.Errorf("docker: remove image %s: %w", tag, err))
				continue
			}
			did = append(did, fmt.Sprintf("removed %s (%s)", tag, im.ID))
		}
	}
	return did, errors.Join(errs...)
}

// buildErr reads a build's JSON message stream to its end and returns the
// error it reports, if any.
func buildErr(r io.Reader) error {
	dec := json.NewDecoder(r)
	var last string
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return fmt.Errorf("%s (after %q)", m.Error, strings.TrimSpace(last))
		}
		if m.Stream != "" {
			last = m.Stream
		}
	}
}

// Package drivers chooses a driver by name: the one place that knows
// every driver package. The runner asks it for a driver.Driver and knows
// nothing else about where a topology runs.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/docker"
	"github.com/lossbench/lossbench/chaos/driver/local"
)

// Auto picks a driver for the machine (Choose).
const Auto = "auto"

// entry is one driver: its factory and a probe saying whether it can run
// here (nil: always).
type entry struct {
	name  string
	about string
	open  driver.Factory
	probe func(ctx context.Context, image string) error
}

// registry lists the drivers in the order Auto prefers them.
var registry = []entry{
	{name: "docker", about: "containers on the Docker engine DOCKER_HOST names", open: docker.Open, probe: dockerProbe},
	{name: "local", about: "child processes on this machine", open: local.Open},
}

// dockerProbe asks once per process and image: an engine answers and the
// refbroker image builds (image ""), or the engine has the named image.
var dockerProbe = func() func(context.Context, string) error {
	var mu sync.Mutex
	done := map[string]error{}
	return func(ctx context.Context, image string) error {
		mu.Lock()
		defer mu.Unlock()
		if err, ok := done[image]; ok {
			return err
		}
		err := docker.Probe(ctx, image)
		done[image] = err
		return err
	}
}()

// Names are the values --driver takes: Auto, then each driver.
func Names() []string {
	names := []string{Auto}
	for _, e := range registry {
		names = append(names, e.name)
	}
	return names
}

// Help is one line per name for --help: "auto (...), local (...)".
func Help() string {
	parts := []string{Auto + " (the first of " + strings.Join(Names()[1:], ", ") + " that works here)"}
	for _, e := range registry {
		parts = append(parts, e.name+" ("+e.about+")")
	}
	return strings.Join(parts, ", ")
}

func find(name string) (entry, error) {
	for _, e := range registry {
		if e.name == name {
			return e, nil
		}
	}
	return entry{}, fmt.Errorf("driver %q: not one of %s", name, strings.Join(Names(), ", "))
}

// Choose resolves name: a known driver is itself (Check says whether it
// can run); Auto is the first driver whose probe answers, and why says
// why that one and not the ones before it. image is the refbroker image
// a container driver is to run (--refbroker-image; "": built here).
func Choose(ctx context.Context, name, image string) (chosen, why string, err error) {
	if name != Auto {
		if _, err := find(name); err != nil {
			return "", "", err
		}
		return name, "asked for with --driver " + name, nil
	}
	var skipped []string
	for _, e := range registry {
		if e.probe == nil {
			if len(skipped) == 0 {
				return e.name, "the first driver", nil
			}
			return e.name, strings.Join(skipped, "; "), nil
		}
		if err := e.probe(ctx, image); err != nil {
			skipped = append(skipped, fmt.Sprintf("not %s: %v", e.name, err))
			continue
		}
		return e.name, e.name + " answers", nil
	}
	return "", "", fmt.Errorf("no driver works here: %s", strings.Join(skipped, "; "))
}

// Check says whether driver name can run here with the refbroker image
// (as in Choose): nil, or its probe's error.
func Check(ctx context.Context, name, image string) error {
	e, err := find(name)
	if err != nil {
		return err
	}
	if e.probe == nil {
		return nil
	}
	return e.probe(ctx, image)
}

// Open makes driver name (not Auto: Choose first) for one scenario's
// run. On error it may return a partial driver, which the caller must
// Close.
func Open(ctx context.Context, name string, cfg driver.Config) (driver.Driver, error) {
	e, err := find(name)
	if err != nil {
		return nil, err
	}
	return e.open(ctx, cfg)
}

// OpenAuto opens the first driver that works here and runs cfg: one
// whose probe fails, or that cannot run this topology (its Open fails
// with driver.ErrUnsupported: a database image that cannot be made, or
// a FUSE disk fault where FUSE is unavailable, on docker), gives way to
// the next. why says which and why.
func OpenAuto(ctx context.Context, cfg driver.Config) (d driver.Driver, name, why string, err error) {
	var skipped []string
	for _, e := range registry {
		if e.probe != nil {
			if err := e.probe(ctx, cfg.BrokerImage); err != nil {
				skipped = append(skipped, fmt.Sprintf("not %s: %v", e.name, err))
				continue
			}
		}
		d, err := e.open(ctx, cfg)
		if err != nil && errors.Is(err, driver.ErrUnsupported) {
			if d != nil {
				d.Close()
			}
			skipped = append(skipped, fmt.Sprintf("not %s: %v", e.name, err))
			continue
		}
		why := e.name + " works here"
		if len(skipped) > 0 {
			why = strings.Join(skipped, "; ")
		}
		return d, e.name, why, err
	}
	return nil, "", "", fmt.Errorf("no driver runs this scenario here: %s", strings.Join(skipped, "; "))
}

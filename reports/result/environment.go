package result

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Environment is where a run happened, so a number can be traced to a
// build, a broker and a machine.
type Environment struct {
	// Commit is lossbench's VCS revision (build info, else git in the
	// working directory); Modified says the tree had local changes.
	Commit    string `json:"lossbench_commit"`
	Modified  bool   `json:"lossbench_modified,omitempty"`
	GoVersion string `json:"go_version"`
	// Broker is the command line of the brokers under test and
	// BrokerVersion what they report, as the driver knows them.
	Broker        []string `json:"broker_command,omitempty"`
	BrokerVersion string   `json:"broker_version,omitempty"`
	Kernel        string   `json:"kernel"`
	OS            string   `json:"os"`
	Arch          string   `json:"arch"`
	CPUs          int      `json:"cpus"`
	Driver        string   `json:"driver,omitempty"`
	// Writeback is the writeback model of the driver's fault-injecting
	// filesystem (when a node was on one): how unsynced writes became
	// durable before a power cut, e.g. "host: expire 30s, every 5s" or
	// "none: only fsync makes data durable".
	Writeback string `json:"writeback,omitempty"`
}

// Collect describes this process's environment; the caller fills in the
// broker and the driver.
func Collect(ctx context.Context) Environment {
	e := Environment{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				e.Commit = s.Value
			case "vcs.modified":
				e.Modified = s.Value == "true"
			}
		}
	}
	if e.Commit == "" {
		e.Commit, e.Modified = gitCommit(ctx)
	}
	e.Kernel = kernel()
	return e
}

// gitCommit asks git about the working directory: builds with
// -buildvcs=false or `go run`/`go test` carry no VCS stamp.
func gitCommit(ctx context.Context) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err == nil && len(strings.TrimSpace(string(st))) > 0
}

// kernel is `uname -sr`, read from /proc where it exists.
func kernel() string {
	typ, err1 := os.ReadFile("/proc/sys/kernel/ostype")
	rel, err2 := os.ReadFile("/proc/sys/kernel/osrelease")
	if err1 == nil && err2 == nil {
		return strings.TrimSpace(string(typ)) + " " + strings.TrimSpace(string(rel))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return runtime.GOOS
}

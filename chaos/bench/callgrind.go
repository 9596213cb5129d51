package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A broker's CPU cost per message, in a form that does not depend on the
// machine's noise: the instructions it executes (valgrind's callgrind)
// while a cell's load runs, over the messages it stored. Callgrind's
// counters are zeroed once the broker is ready and dumped when the load
// ends, so start-up and shutdown are not counted. Under valgrind the
// broker runs tens of times slower, so the cell's throughput means
// nothing; its instructions per message do. The profile itself stays in
// the cell's folder (callgrind.out.1, for callgrind_annotate).

// callgrindOut is the profile's path in a cell's folder; callgrind adds
// the dump's number (.1).
const callgrindOut = "callgrind.out"

// CallgrindAvailable says what to install when valgrind's tools are
// missing.
func CallgrindAvailable() error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (install Debian's valgrind package)", tool)
		}
	}
	return nil
}

// callgrindLaunch runs a broker under callgrind, its profile in dir. Go
// programs need two settings under valgrind: no asynchronous preemption
// (its signals upset valgrind's thread scheduling) and no RDTSCP, an
// instruction valgrind does not decode.
func callgrindLaunch(dir string) launch {
	godebug := "asyncpreemptoff=1,cpu.rdtscp=off"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	return launch{
		wrap:  []string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + filepath.Join(dir, callgrindOut)},
		env:   append(env, "GODEBUG="+godebug),
		ready: 2 * time.Minute,
	}
}

// counting is the instruction count of one cell's broker, running under
// callgrind: from the zeroing of its counters, with the messages it had
// stored then.
type counting struct {
	b   *Broker
	dir string
	in0 float64
}

// startCounting zeroes the counters of b, ready under callgrindLaunch(dir).
func startCounting(b *Broker, dir string) (*counting, error) {
	mets, err := b.Metrics()
	if err != nil {
		return nil, err
	}
	if err := callgrindControl(b.proc.cmd.Process.Pid, "-z"); err != nil {
		return nil, err
	}
	return &counting{b: b, dir: dir, in0: mets[messagesIn]}, nil
}

// perMessage dumps the counters and returns the instructions since
// startCounting over the messages stored since, in1 the broker's count
// now; 0 when it stored none.
func (c *counting) perMessage(in1 float64) (float64, error) {
	if err := callgrindControl(c.b.proc.cmd.Process.Pid, "-d"); err != nil {
		return 0, err
	}
	ir, err := callgrindTotal(filepath.Join(c.dir, callgrindOut+".1"))
	if err != nil || in1 <= c.in0 {
		return 0, err
	}
	return float64(ir) / (in1 - c.in0), nil
}

// callgrindControl sends op (-z zero, -d dump) to the callgrind run of
// pid and waits for its answer.
func callgrindControl(pid int, op string) error {
	out, err := exec.Command("callgrind_control", op, strconv.Itoa(pid)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		return fmt.Errorf("callgrind_control %s %d: %v: %s", op, pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// callgrindTotal reads the instruction count (event Ir) of a callgrind
// profile: its totals line, else its summary line.
func callgrindTotal(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseCallgrindTotal(f, path)
}

// parseCallgrindTotal is callgrindTotal on a profile read from r; name
// is for errors.
func parseCallgrindTotal(r io.Reader, name string) (uint64, error) {
	var summary string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "totals:"); ok {
			return parseIr(name, v)
		}
		if v, ok := strings.CutPrefix(line, "summary:"); ok {
			summary = v
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if summary == "" {
		return 0, fmt.Errorf("%s: no totals or summary line", name)
	}
	return parseIr(name, summary)
}

// parseIr takes the first count of a totals or summary line: Ir, the
// event callgrind collects by default, a count.
func parseIr(name, v string) (uint64, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s: empty totals line", name)
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: totals %q: %w", name, fields[0], err)
	}
	return n, nil
}

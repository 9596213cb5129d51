// Command lossbench runs broker loss scenarios and checks their results.
//
//	lossbench validate FILE…   check scenario files
//	lossbench check DIR…       re-run the checker on a scenario's output folder
//	lossbench run …            run scenarios (run.go)
//
// Exit codes (shared/DESIGN.md): 0 every expectation holds, 1 an
// expectation or gate failed, 2 bad input or environment.
//
// # Adding a subcommand
//
// Each subcommand lives in its own file of this package and registers
// itself from init, so adding one never touches main.go:
//
//	func init() {
//		register(command{
//			name:    "run",
//			usage:   "[--driver local] [--out DIR] [--seed N] FILE…",
//			summary: "run scenarios and write their results",
//			help:    "Longer text shown by lossbench run --help.",
//			run:     runRun,
//		})
//	}
//
//	func runRun(ctx context.Context, cmd *command, st *stdio, args []string) int {
//		fs := cmd.flags(st)                       // -h/--help handled for you
//		seed := fs.Int64("seed", 0, "replay with this seed")
//		files, code, ok := cmd.parse(fs, args)    // ok false: return code
//		if !ok {
//			return code
//		}
//		...
//		return exitOK // or exitFailed, exitBad
//	}
//
// ctx is cancelled on SIGINT/SIGTERM, so a command can clean up and
// return; write to st.out and st.err, never to os.Stdout, so tests can run
// commands in-process with Main.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK     = 0 // every expectation holds
	exitFailed = 1 // an expectation or gate failed
	exitBad    = 2 // bad input or environment
)

// command is one subcommand.
type command struct {
	// name is the word after lossbench.
	name string
	// usage is the synopsis after the name, e.g. "[flags] FILE…".
	usage string
	// summary is one line for lossbench --help.
	summary string
	// help is the longer text of lossbench NAME --help.
	help string
	// run executes the command on the arguments after its name and
	// returns the exit code.
	run func(ctx context.Context, cmd *command, st *stdio, args []string) int
}

// stdio is where a command reads and writes.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// commands is the registry, filled by register from init functions.
var commands = map[string]*command{}

// register adds a subcommand; a duplicate name is a programming error.
func register(c command) {
	if c.name == "" || c.run == nil {
		panic("lossbench: register: command needs a name and a run function")
	}
	if _, dup := commands[c.name]; dup {
		panic("lossbench: register: duplicate command " + c.name)
	}
	commands[c.name] = &c
}

// flags returns a flag set for the command whose usage text is the
// command's help and flags; errors and help go to st.err.
func (c *command) flags(st *stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("lossbench "+c.name, flag.ContinueOnError)
	fs.SetOutput(st.err)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: lossbench %s %s\n\n", c.name, c.usage)
		if c.help != "" {
			fmt.Fprintf(fs.Output(), "%s\n\n", strings.TrimSpace(c.help))
		} else {
			fmt.Fprintf(fs.Output(), "%s\n\n", c.summary)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(fs.Output(), "flags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args with fs. ok is false when the command must return
// code at once: 0 after --help, 2 after a bad flag.
func (c *command) parse(fs *flag.FlagSet, args []string) (rest []string, code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		}
		return nil, exitBad, false
	}
	return fs.Args(), 0, true
}

// usage prints the top-level help.
func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: lossbench COMMAND [flags] [args]\n\nlossbench measures how many acknowledged messages a broker loses under failures.\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun lossbench COMMAND --help for a command's flags.\nExit codes: 0 ok, 1 an expectation failed, 2 bad input or environment.\n")
}

// Main runs lossbench with args (without the program name) and returns
// the exit code.
func Main(ctx context.Context, args []string, st *stdio) int {
	if len(args) == 0 {
		usage(st.err)
		return exitBad
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, c, st, []string{"--help"})
			}
		}
		usage(st.out)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(st.err, "lossbench: unknown command %q\n\n", args[0])
		usage(st.err)
		return exitBad
	}
	return c.run(ctx, c, st, args[1:])
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

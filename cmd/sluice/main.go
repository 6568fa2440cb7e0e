// Command sluice operates Sluice applications from the shell.
//
//	sluice reset    -brokers B -application-id ID -input-topics a,b [-to-earliest|-to-latest|-to-datetime T|-by-duration D|-to-offset N|-shift-by N] [-dry-run]
//	sluice lag      -brokers B -application-id ID [-json]
//	sluice query    -url http://host:port STORE KEY
//	sluice query    -url http://host:port -range FROM:TO STORE
//	sluice describe -url http://host:port [-format text|json|mermaid|dot]
//	sluice help [COMMAND]
//
// reset and lag talk to Kafka (the application's consumer group, whose
// name is its application ID, and its topics); query and describe talk to
// a running application's HTTP server (runtime.HTTPAddr). reset is Kafka
// Streams' kafka-streams-application-reset: it sets the committed offsets
// of the input topics (to their start by default) and deletes the
// application's internal topics, so that the next run processes the input
// again from there; it refuses while the group has active members.
//
// Every command exits 0 on success, 1 on an error (printed to standard
// error) and 2 on a usage error. docs/cli.md describes each in full.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// command is one subcommand: run parses its own flags from args (after
// the command's name) and writes its results to out.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) error
}

var commands []command

func init() {
	// Set here, not in the declaration: help refers to commands.
	commands = []command{
		{"reset", "reset an application's input offsets and delete its internal topics, to reprocess its input", runReset},
		{"lag", "show the committed offset, end offset and lag of each partition an application consumes", runLag},
		{"query", "read a key or a key range of a running application's state store (interactive queries)", runQuery},
		{"describe", "print a running application's topology", runDescribe},
		{"help", "describe a command: sluice help COMMAND", runHelp},
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run runs the command named by args[0] with the rest of args.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		printUsage(errOut)
		return usagef("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(out)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], out, errOut)
		}
	}
	printUsage(errOut)
	return usagef("unknown command %q", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "sluice operates Sluice applications.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: sluice COMMAND [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `"sluice help COMMAND" or "sluice COMMAND -h" lists a command's flags.`)
}

// runHelp prints the usage of the command named by args[0], or of sluice.
func runHelp(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		printUsage(out)
		return nil
	}
	if args[0] == "help" {
		printUsage(out)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, []string{"-h"}, out, out)
		}
	}
	return usagef("unknown command %q", args[0])
}

// exitCode reports err on w and returns the process's exit status.
func exitCode(err error, w io.Writer) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(w, "sluice:", err)
		return 2
	default:
		fmt.Fprintln(w, "sluice:", err)
		return 1
	}
}

// newFlagSet returns the flag set of a command, its usage (-h, errors)
// written to w with the command's synopsis and description first.
func newFlagSet(name, synopsis, description string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: sluice %s %s\n\n%s\n\nFlags:\n", name, synopsis, description)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. -h is not an error (nil, after the usage
// is printed); done reports that the command must stop there.
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err != nil {
		return true, &usageError{err.Error()}
	}
	return false, nil
}

// kafkaFlags are the flags of the commands that talk to Kafka.
type kafkaFlags struct {
	brokers string
	appID   string
	timeout time.Duration
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.brokers, "brokers", "localhost:9092", "comma-separated Kafka brokers (Kafka: --bootstrap-server)")
	fs.StringVar(&k.appID, "application-id", "", "the application's ID (runtime.ApplicationID): its consumer group and the prefix of its internal topics; required")
	fs.DurationVar(&k.timeout, "timeout", time.Minute, "give up after this long")
}

// admin returns an admin client of the brokers; the caller must Close the
// kgo client.
func (k *kafkaFlags) admin() (*kadm.Client, *kgo.Client, error) {
	if k.appID == "" {
		return nil, nil, usagef("-application-id is required")
	}
	seeds := splitList(k.brokers)
	if len(seeds) == 0 {
		return nil, nil, usagef("-brokers is empty")
	}
	// kadm answers topic listings from the client's metadata cache, up
	// to MetadataMinAge old (5 s by default): reset lists topics before
	// and after deleting some.
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("client of brokers %s: %w", k.brokers, err)
	}
	return kadm.NewClient(cl), cl, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// broker is the cluster the chaos run uses, restartable on the same
// addresses and data.
type broker interface {
	kind() string
	addrs() []string
	// restart stops the broker and starts it again on the same ports with
	// the same data.
	restart(ctx context.Context) error
	close()
}

// kfakeBroker is an in-process kfake cluster persisted to a directory, on
// a fixed port so that a restart keeps its address.
type kfakeBroker struct {
	dir  string
	port int
	c    *kfake.Cluster
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startKfake(dir string) (*kfakeBroker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &kfakeBroker{dir: dir, port: port}
	if err := b.open(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *kfakeBroker) open() error {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(b.port), kfake.DataDir(b.dir))
	if err != nil {
		return fmt.Errorf("kfake on port %d, data %s: %w", b.port, b.dir, err)
	}
	b.c = c
	return nil
}

func (b *kfakeBroker) kind() string    { return "kfake" }
func (b *kfakeBroker) addrs() []string { return b.c.ListenAddrs() }
func (b *kfakeBroker) close()          { b.c.Close() }

func (b *kfakeBroker) restart(context.Context) error {
	b.c.Close()
	return b.open()
}

// realBroker is a broker started by scripts/kafka.sh in dir; restart runs
// `kafka.sh restart dir` (SIGTERM, then a start on the same ports and data).
type realBroker struct {
	brokers []string
	script  string
	dir     string
}

func (b *realBroker) kind() string    { return "real Kafka" }
func (b *realBroker) addrs() []string { return b.brokers }
func (b *realBroker) close()          {}

func (b *realBroker) restart(ctx context.Context) error {
	if b.dir == "" {
		return fmt.Errorf("broker restart: -kafka-dir (the directory kafka.sh runs the broker in) is required with -broker real")
	}
	cmd := exec.CommandContext(ctx, b.script, "restart", b.dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s restart %s: %w", b.script, b.dir, err)
	}
	return nil
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

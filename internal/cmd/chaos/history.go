package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// historyMain (-role history) prints what a failed run wrote for one key:
// each record of the output topic and of the count's changelog (read
// committed, and the changelog also uncommitted) around every place where
// the count does not go up by one, with the producer ID and epoch that
// wrote it (which instance, which incarnation: a restarted instance keeps
// its producer ID and bumps the epoch), the input timestamp and the
// changelog's input position header. A kfake run's broker can be reopened
// from its data directory (-kfake-dir, the run's dir/kfake).
func historyMain(args []string) error {
	fs := flag.NewFlagSet("chaos history", flag.ContinueOnError)
	brokersFlag := fs.String("brokers", "", "seed brokers (or -kfake-dir)")
	kfakeDir := fs.String("kfake-dir", "", "reopen the kfake broker of a kept run from this data directory")
	out := fs.String("out", "", "output topic")
	changelog := fs.String("changelog", "", "changelog topic of the count (<app>-counts-changelog)")
	key := fs.String("key", "", "the key")
	around := fs.Int("context", 3, "records shown before each jump")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || *out == "" {
		return errors.New("history: -key and -out are required")
	}
	brokers := splitBrokers(*brokersFlag)
	if *kfakeDir != "" {
		kb, err := startKfake(*kfakeDir)
		if err != nil {
			return err
		}
		defer kb.close()
		brokers = kb.addrs()
	}
	if len(brokers) == 0 {
		return errors.New("history: -brokers or -kfake-dir is required")
	}
	if err := keyHistory(brokers, *out, *key, true, *around); err != nil {
		return err
	}
	if *changelog != "" {
		if err := keyHistory(brokers, *changelog, *key, true, *around); err != nil {
			return err
		}
		return keyHistory(brokers, *changelog, *key, false, *around)
	}
	return nil
}

func keyHistory(brokers []string, topic, key string, committed bool, before int) error {
	iso := "read_committed"
	var opts []kgo.Opt
	if !committed {
		iso = "read_uncommitted"
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	}
	fmt.Printf("== %s (%s), key %q: records around each value that is not the one before plus 1\n", topic, iso, key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var seen []string
	var last int64
	n := 0
	err := readTopic(ctx, brokers, topic, func(r *kgo.Record) {
		if string(r.Key) != key {
			return
		}
		n++
		v := int64(-1)
		if len(r.Value) >= 8 {
			v = int64(binary.BigEndian.Uint64(r.Value[len(r.Value)-8:]))
		}
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, fmt.Sprintf("%s=%x", h.Key, h.Value))
		}
		line := fmt.Sprintf("  partition %d offset %d value %d producer %d epoch %d input time %s %s",
			r.Partition, r.Offset, v, r.ProducerID, r.ProducerEpoch, r.Timestamp.Format("15:04:05.000"), strings.Join(hs, " "))
		if n > 1 && v != last+1 {
			for _, s := range seen {
				fmt.Println(s)
			}
			fmt.Println(line, " <== jump")
			seen = nil
		} else {
			seen = append(seen, line)
			if len(seen) > before {
				seen = seen[1:]
			}
		}
		last = v
	}, opts...)
	fmt.Printf("  (%d records of the key)\n", n)
	return err
}

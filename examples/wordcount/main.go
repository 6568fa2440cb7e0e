// Command wordcount counts words: the flagship Sluice example.
//
// It reads lines of text from a topic, splits them into lowercased words,
// keeps a running count per word in a state store and writes every updated
// count to an output topic.
//
//	wordcount -describe      print the compiled topology and exit
//	wordcount -generate N    run on N generated lines and print the top words
//
// Until the runtime lands, the program runs the topology in Sluice's
// in-memory test driver.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/testdriver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	input := fs.String("input", "text-input", "topic of text lines")
	output := fs.String("output", "word-counts", "topic of word counts")
	describe := fs.Bool("describe", false, "print the topology and exit")
	generate := fs.Int("generate", 100000, "number of generated lines to count")
	top := fs.Int("top", 10, "number of top words to print")
	if err := fs.Parse(args); err != nil {
		return err
	}
	topo, err := Topology(*input, *output)
	if err != nil {
		return err
	}
	if *describe {
		fmt.Fprint(out, topo.Describe())
		return nil
	}

	d, err := testdriver.New(topo, testdriver.WithApplicationID("wordcount"))
	if err != nil {
		return err
	}
	defer d.Close()
	in := testdriver.CreateInputTopic(d, *input, serde.Bytes, serde.String)
	start := time.Now()
	words := 0
	for _, line := range generateLines(*generate) {
		words += len(strings.Fields(line))
		if err := in.PipeValue(line); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	counts, err := testdriver.ReadKeyValuesToMap(testdriver.CreateOutputTopic(d, *output, serde.String, serde.Int64))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Counted %d words (%d distinct) in %d lines in %v (in-memory test driver).\n",
		words, len(counts), *generate, elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "Top %d words:\n", *top)
	for _, w := range topWords(counts, *top) {
		fmt.Fprintf(out, "  %-10s %d\n", w, counts[w])
	}
	return nil
}

// topWords returns the n most frequent words, ties by word.
func topWords(counts map[string]int64, n int) []string {
	ws := make([]string, 0, len(counts))
	for w := range counts {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return ws[:min(n, len(ws))]
}

// vocabulary is drawn from with a Zipf distribution, so a few words are
// common and most are rare, as in real text.
var vocabulary = strings.Fields(`the of and to a in is it you that he was for on are with as I his they
be at one have this from or had by hot word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no most people
my over know water than call first who may down side been now find any new work part take get place
made live where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move right
boy old too same tell does set three want air well also play small end put home read hand port large
spell add even land here must big high such follow act why ask men change went light kind off need house
picture try us again animal point mother world near build self earth father head stand own page should
country found answer school grow study still learn plant cover food sun four between state keep eye never
last let thought city tree cross farm hard start might story saw far sea draw left late run while press`)

// generateLines makes n lines of 5 to 15 words, the same on every run.
func generateLines(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocabulary)-1))
	lines := make([]string, n)
	var sb strings.Builder
	for i := range lines {
		sb.Reset()
		for j := range 5 + rng.IntN(11) {
			if j > 0 {
				sb.WriteByte(' ')
			}
			w := vocabulary[zipf.Uint64()]
			if rng.IntN(10) == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			sb.WriteString(w)
		}
		lines[i] = sb.String()
	}
	return lines
}

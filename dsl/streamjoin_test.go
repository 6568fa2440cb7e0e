package dsl_test

// Stream-stream joins: topology shape and names of rekeyed inputs (Kafka
// Streams' KStreamKStreamJoinTest.shouldReuseRepartitionTopicWith-
// GeneratedName and shouldCreateRepartitionTopicsWithUserProvidedName),
// build errors, store specs, and the changelogs.

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/window"
)

// rekeyedJoins builds the topology of the two Java tests: a mapped stream
// joined with two others, named (first-join, second-join) or not.
func rekeyedJoins(t *testing.T, named bool) string {
	t.Helper()
	b := dsl.NewBuilder()
	s1 := dsl.FromTopic(b, "topic", serde.String, serde.String)
	s2 := dsl.FromTopic(b, "topic2", serde.String, serde.String)
	s3 := dsl.FromTopic(b, "topic3", serde.String, serde.String)
	mapped := dsl.Map(s1, func(k, v string) (string, string) { return v, k }).WithKeySerde(serde.String).WithValueSerde(serde.String)
	w := window.JoinTimeDifference(100 * time.Millisecond)
	concat := func(_ string, a, b string) string { return a + b }
	var o1, o2 []dsl.JoinOption
	if named {
		o1, o2 = []dsl.JoinOption{dsl.Named("first-join")}, []dsl.JoinOption{dsl.Named("second-join")}
	}
	dsl.Join(mapped, s2, concat, w, o1...).To("out-one", serde.String, serde.String)
	dsl.Join(mapped, s3, concat, w, o2...).To("out-two", serde.String, serde.String)
	topo, err := b.Build()
	opsOK(t, err)
	var lines []string
	for _, st := range topo.SubTopologies() {
		lines = append(lines, "sub-topology")
		for _, n := range st.Nodes {
			var parents []string
			for _, p := range n.Parents {
				parents = append(parents, p.Name)
			}
			line := n.Name + " [" + strings.Join(n.Stores, ", ") + "] <- " + strings.Join(parents, ", ")
			if len(n.Topics) > 0 {
				line += " topics " + strings.Join(n.Topics, ",")
			}
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

func TestStreamJoinReusesRepartitionTopicWithGeneratedName(t *testing.T) {
	// The second join reads the first one's repartition topic again, in
	// one sub-topology with both joins; its own repartition names still
	// use up indices 13 to 15.
	want := `sub-topology
KSTREAM-SOURCE-0000000000 [] <-  topics topic
KSTREAM-MAP-0000000003 [] <- KSTREAM-SOURCE-0000000000
KSTREAM-FILTER-0000000005 [] <- KSTREAM-MAP-0000000003
KSTREAM-SINK-0000000004 [] <- KSTREAM-FILTER-0000000005 topics KSTREAM-MAP-0000000003-repartition
sub-topology
KSTREAM-SOURCE-0000000001 [] <-  topics topic2
KSTREAM-SOURCE-0000000002 [] <-  topics topic3
KSTREAM-SOURCE-0000000006 [] <-  topics KSTREAM-MAP-0000000003-repartition
KSTREAM-WINDOWED-0000000007 [KSTREAM-JOINTHIS-0000000009-store] <- KSTREAM-SOURCE-0000000006
KSTREAM-WINDOWED-0000000008 [KSTREAM-JOINOTHER-0000000010-store] <- KSTREAM-SOURCE-0000000001
KSTREAM-JOINTHIS-0000000009 [KSTREAM-JOINOTHER-0000000010-store] <- KSTREAM-WINDOWED-0000000007
KSTREAM-JOINOTHER-0000000010 [KSTREAM-JOINTHIS-0000000009-store] <- KSTREAM-WINDOWED-0000000008
KSTREAM-MERGE-0000000011 [] <- KSTREAM-JOINTHIS-0000000009, KSTREAM-JOINOTHER-0000000010
KSTREAM-SINK-0000000012 [] <- KSTREAM-MERGE-0000000011 topics out-one
KSTREAM-WINDOWED-0000000016 [KSTREAM-JOINTHIS-0000000018-store] <- KSTREAM-SOURCE-0000000006
KSTREAM-WINDOWED-0000000017 [KSTREAM-JOINOTHER-0000000019-store] <- KSTREAM-SOURCE-0000000002
KSTREAM-JOINTHIS-0000000018 [KSTREAM-JOINOTHER-0000000019-store] <- KSTREAM-WINDOWED-0000000016
KSTREAM-JOINOTHER-0000000019 [KSTREAM-JOINTHIS-0000000018-store] <- KSTREAM-WINDOWED-0000000017
KSTREAM-MERGE-0000000020 [] <- KSTREAM-JOINTHIS-0000000018, KSTREAM-JOINOTHER-0000000019
KSTREAM-SINK-0000000021 [] <- KSTREAM-MERGE-0000000020 topics out-two`
	if got := rekeyedJoins(t, false); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestStreamJoinRepartitionTopicsWithUserProvidedName(t *testing.T) {
	// Named joins repartition through "<name>-left-repartition"; the
	// generated names of the nodes they name still use up indices, and the
	// stores keep generated names.
	want := `sub-topology
KSTREAM-SOURCE-0000000000 [] <-  topics topic
KSTREAM-MAP-0000000003 [] <- KSTREAM-SOURCE-0000000000
first-join-left-repartition-filter [] <- KSTREAM-MAP-0000000003
first-join-left-repartition-sink [] <- first-join-left-repartition-filter topics first-join-left-repartition
second-join-left-repartition-filter [] <- KSTREAM-MAP-0000000003
second-join-left-repartition-sink [] <- second-join-left-repartition-filter topics second-join-left-repartition
sub-topology
KSTREAM-SOURCE-0000000001 [] <-  topics topic2
first-join-left-repartition-source [] <-  topics first-join-left-repartition
first-join-this-windowed [KSTREAM-JOINTHIS-0000000009-store] <- first-join-left-repartition-source
first-join-other-windowed [KSTREAM-JOINOTHER-0000000010-store] <- KSTREAM-SOURCE-0000000001
first-join-this-join [KSTREAM-JOINOTHER-0000000010-store] <- first-join-this-windowed
first-join-other-join [KSTREAM-JOINTHIS-0000000009-store] <- first-join-other-windowed
first-join-merge [] <- first-join-this-join, first-join-other-join
KSTREAM-SINK-0000000012 [] <- first-join-merge topics out-one
sub-topology
KSTREAM-SOURCE-0000000002 [] <-  topics topic3
second-join-left-repartition-source [] <-  topics second-join-left-repartition
second-join-this-windowed [KSTREAM-JOINTHIS-0000000018-store] <- second-join-left-repartition-source
second-join-other-windowed [KSTREAM-JOINOTHER-0000000019-store] <- KSTREAM-SOURCE-0000000002
second-join-this-join [KSTREAM-JOINOTHER-0000000019-store] <- second-join-this-windowed
second-join-other-join [KSTREAM-JOINTHIS-0000000018-store] <- second-join-other-windowed
second-join-merge [] <- second-join-this-join, second-join-other-join
KSTREAM-SINK-0000000021 [] <- second-join-merge topics out-two`
	if got := rekeyedJoins(t, true); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

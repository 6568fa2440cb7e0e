package topology

import (
	"maps"
	"testing"
	"time"
)

// A suppression buffer is a key-value store as far as its changelog goes
// (compact, keys as they are, no retention, no segments), whose records
// carry the header "v" = 3 of Kafka Streams' buffer changelog; no other
// kind has a version.
func TestSuppressionBufferKind(t *testing.T) {
	s := StoreSpec{Name: "final-store", Kind: SuppressionBuffer, Retention: time.Hour}
	if s.Kind.String() != "suppression-buffer" || s.Kind.Windowed() || s.Kind.SegmentPrefixLen() != 0 || s.StoreRetention() != 0 ||
		s.EffectiveSegmentInterval() != 0 || s.ChangelogTopic() != "final-store-changelog" {
		t.Fatalf("kind %v: windowed %v, prefix %d, retention %v, segment %v, changelog %s", s.Kind, s.Kind.Windowed(),
			s.Kind.SegmentPrefixLen(), s.StoreRetention(), s.EffectiveSegmentInterval(), s.ChangelogTopic())
	}
	if got, want := s.ChangelogTopicConfig(), map[string]string{"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}; !maps.Equal(got, want) {
		t.Errorf("ChangelogTopicConfig = %v, want %v", got, want)
	}
	if v, ok := SuppressionBuffer.ChangelogVersion(); !ok || v != 3 {
		t.Errorf("ChangelogVersion = %d, %v; want 3, true", v, ok)
	}
	for _, k := range []StoreKind{KeyValue, Window, Session} {
		if v, ok := k.ChangelogVersion(); ok {
			t.Errorf("%v: ChangelogVersion = %d, want none", k, v)
		}
	}
}

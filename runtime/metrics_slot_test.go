package runtime

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicehq/sluice/state"
)

// TestMeteredStoreKeepsSlots checks that the store timing of MetricsDebug
// passes the slots of a Pebble store through (a changelog buffer above
// then finds its entries without a lookup, as it does without metrics),
// times PutSlot as a put, and over a store without slots puts and returns
// none.
func TestMeteredStoreKeepsSlots(t *testing.T) {
	m, err := newMetrics("app", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.OpenPebble(t.TempDir(), state.PebbleOptions{BufferWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sp, ok := m.meterStore(taskID{0, 1}, db.KeyValueStore("counts")).(state.SlotPutter)
	if !ok {
		t.Fatal("the metered Pebble store does not implement state.SlotPutter")
	}
	slot, err := sp.PutSlot([]byte("k"), []byte("1"))
	if err != nil || slot == nil {
		t.Fatalf("PutSlot(k) = %v, %v; want a slot", slot, err)
	}
	slot[0] = 7
	again, err := sp.PutSlot([]byte("k"), []byte("2"))
	if err != nil || again == nil || again[0] != 7 {
		t.Fatalf("PutSlot(k) again = %v, %v; want the key's slot, holding 7", again, err)
	}
	var h dto.Metric
	if err := m.storeOps.WithLabelValues("0_1", "counts", "put").(prometheus.Histogram).Write(&h); err != nil {
		t.Fatal(err)
	}
	if n := h.GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("puts timed: %d, want 2", n)
	}

	mem := m.meterStore(taskID{0, 1}, state.NewInMemoryKeyValueStore("plain")).(state.SlotPutter)
	if slot, err := mem.PutSlot([]byte("k"), []byte("v")); err != nil || slot != nil {
		t.Fatalf("PutSlot over a store without slots = %v, %v; want no slot", slot, err)
	}
	if v, ok, err := mem.(state.KeyValueStore).Get([]byte("k")); err != nil || !ok || string(v) != "v" {
		t.Errorf("Get(k) after PutSlot over a store without slots = %q, %v, %v; want v", v, ok, err)
	}
}

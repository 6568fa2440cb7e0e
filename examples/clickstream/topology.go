package main

import (
	"time"

	"github.com/sluicehq/sluice/dsl"
	"github.com/sluicehq/sluice/operators"
	"github.com/sluicehq/sluice/serde"
	"github.com/sluicehq/sluice/topology"
	"github.com/sluicehq/sluice/window"
)

// User is a value of the users table: the region a user belongs to.
type User struct {
	User   string `json:"user"`
	Region string `json:"region"`
}

// Page is a value of the pages global table: the category of a page.
type Page struct {
	Page     string `json:"page"`
	Category string `json:"category"`
}

// Click is a value of the clicks stream: who clicked which page, and when
// (TS, in milliseconds since the Unix epoch: the event time). A click
// without a ts (absent, null or 0) has no event time and is skipped.
type Click struct {
	User string `json:"user"`
	Page string `json:"page"`
	TS   int64  `json:"ts,omitempty"`
}

// Purchase is a value of the purchases stream: who bought for how much,
// and when (TS, the event time, as for Click).
type Purchase struct {
	User   string  `json:"user"`
	Amount float64 `json:"amount"`
	TS     int64   `json:"ts,omitempty"`
}

// EnrichedClick is a value of clicks-enriched: a click of a known user,
// with the user's region and the page's category. Category is nil (JSON
// null) when the page is not in the pages table.
type EnrichedClick struct {
	User     string  `json:"user"`
	Page     string  `json:"page"`
	Region   string  `json:"region"`
	Category *string `json:"category"`
	TS       int64   `json:"ts"`
}

// RegionCount is a value of region-clicks: the number of enriched clicks
// of Region with an event time in [WindowStart, WindowEnd) (epoch ms).
type RegionCount struct {
	Region      string `json:"region"`
	WindowStart int64  `json:"window_start"`
	WindowEnd   int64  `json:"window_end"`
	Count       int64  `json:"count"`
}

// AttributedPurchase is a value of attributed-purchases: a purchase and
// one click of the same user at most ten minutes before it.
type AttributedPurchase struct {
	User       string  `json:"user"`
	Page       string  `json:"page"`
	Amount     float64 `json:"amount"`
	ClickTS    int64   `json:"click_ts"`
	PurchaseTS int64   `json:"purchase_ts"`
}

// Topics are the topics the topology reads and writes.
type Topics struct {
	Users, Pages, Clicks, Purchases    string // inputs
	Enriched, RegionClicks, Attributed string // outputs
}

// defaultTopics are the program's topics.
var defaultTopics = Topics{
	Users: "users", Pages: "pages", Clicks: "clicks", Purchases: "purchases",
	Enriched: "clicks-enriched", RegionClicks: "region-clicks", Attributed: "attributed-purchases",
}

// inputs and outputs list the topics.
func (t Topics) inputs() []string  { return []string{t.Users, t.Pages, t.Clicks, t.Purchases} }
func (t Topics) outputs() []string { return []string{t.Enriched, t.RegionClicks, t.Attributed} }

// The windows of the topology, as the program's documentation gives them.
const (
	// regionWindow and regionGrace: region-clicks counts in tumbling
	// windows of a minute, each written once when stream time passes its
	// end + 10 s.
	regionWindow = time.Minute
	regionGrace  = 10 * time.Second
	// attribution and attributionGrace: a purchase at t is attributed to
	// the clicks of its user in [t - 10 min, t].
	attribution      = 10 * time.Minute
	attributionGrace = time.Minute
)

// Names in the topology, which also name its stores and internal topics.
const (
	clickSource    = "clicks"
	purchaseSource = "purchases"
	usersTable     = "users"
	pagesTable     = "pages"
	regionCount    = "region-clicks-per-minute"
	byRegion       = "by-region"
)

// attributionWindows are the join windows of attributed-purchases:
// purchases is the left side of the join, so a purchase at t meets the
// clicks at [t - Before, t + After] = [t - 10 min, t]; a click at t meets
// the purchases at [t - After, t + Before] = [t, t + 10 min].
var attributionWindows = window.Join{Before: attribution, After: 0, Grace: attributionGrace}

// Topology builds the clickstream pipeline on the given topics:
//
//   - clicks-enriched: each click of a user in the users table (an inner
//     stream-table join on the user id), with the user's region and the
//     category of its page from the pages global table (a left join on
//     the click's page: null when the page is unknown), keyed by user id
//     and timestamped with the click's ts;
//   - region-clicks: the enriched clicks regrouped by region (through the
//     repartition topic "by-region-repartition") and counted per region
//     in one-minute tumbling windows with 10 s of grace, each window
//     written once when it closes, keyed by region and timestamped with
//     its latest click;
//   - attributed-purchases: each purchase joined with every click of the
//     same user whose ts is in [purchase ts - 10 min, purchase ts] (a
//     windowed stream-stream join, grace 1 min): one record per pair, keyed
//     by user id and timestamped with the purchase's ts (the later of the
//     two).
//
// Event time is the ts field of clicks and purchases; a record without one
// is dropped and counted at its source (reason "invalid-timestamp"), and
// so is a value that is not JSON of its type when the runtime skips
// undecodable records.
func Topology(t Topics) (*topology.Topology, error) {
	b := dsl.NewBuilder()
	users := dsl.TableFromTopic(b, t.Users, serde.String, serde.JSON[User](), dsl.Named(usersTable))
	pages := dsl.GlobalTableFromTopic(b, t.Pages, serde.String, serde.JSON[Page](), dsl.Named(pagesTable))
	clicks := dsl.FromTopic(b, t.Clicks, serde.String, serde.JSON[Click](), dsl.Named(clickSource),
		dsl.Timestamps(clickTime), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))
	purchases := dsl.FromTopic(b, t.Purchases, serde.String, serde.JSON[Purchase](), dsl.Named(purchaseSource),
		dsl.Timestamps(purchaseTime), dsl.OnInvalidTimestamp(dsl.SkipInvalidTimestamp))

	withRegion := dsl.JoinTable(clicks, users, func(_ string, c Click, u User) EnrichedClick {
		return EnrichedClick{User: c.User, Page: c.Page, Region: u.Region, TS: c.TS}
	}, dsl.Named("click-user"))
	enriched := dsl.LeftJoinGlobal(withRegion, pages,
		func(_ dsl.Maybe[string], e EnrichedClick) dsl.Maybe[string] { return dsl.Some(e.Page) },
		func(_ dsl.Maybe[string], e EnrichedClick, p dsl.Maybe[Page]) EnrichedClick {
			if page, ok := p.Get(); ok {
				e.Category = &page.Category
			}
			return e
		}, dsl.Named("click-page")).WithValueSerde(serde.JSON[EnrichedClick]())
	enriched.To(t.Enriched, serde.String, serde.JSON[EnrichedClick](), dsl.Named("to-clicks-enriched"))

	regions := dsl.GroupByValue(enriched, func(e EnrichedClick) string { return e.Region }, serde.String, dsl.Named(byRegion))
	counts := dsl.WindowedBy(regions, window.Tumbling(regionWindow, regionGrace)).EmitFinal().Count(dsl.Named(regionCount))
	dsl.Map(counts.ToStream(dsl.Named("closed-windows")), func(k window.Windowed[string], n int64) (string, RegionCount) {
		return k.Key, RegionCount{Region: k.Key, WindowStart: k.Window.Start, WindowEnd: k.Window.End, Count: n}
	}, dsl.Named("region-to-json")).To(t.RegionClicks, serde.String, serde.JSON[RegionCount](), dsl.Named("to-region-clicks"))

	dsl.Join(purchases, clicks, func(user string, p Purchase, c Click) AttributedPurchase {
		return AttributedPurchase{User: user, Page: c.Page, Amount: p.Amount, ClickTS: c.TS, PurchaseTS: p.TS}
	}, attributionWindows, dsl.Named("attribution"), dsl.StreamJoined(dsl.StreamJoinOptions{StoreName: "attribution"})).
		To(t.Attributed, serde.String, serde.JSON[AttributedPurchase](), dsl.Named("to-attributed-purchases"))
	return b.Build(dsl.RequireNamedStores())
}

// clickTime and purchaseTime are the timestamp extractors: the record's
// ts, or -1 (invalid, so the source skips and counts the record) when it
// has none or is a tombstone.
func clickTime(_ dsl.Maybe[string], click dsl.Maybe[Click], _ []operators.Header, _ int64) int64 {
	c, ok := click.Get()
	if !ok || c.TS <= 0 {
		return -1
	}
	return c.TS
}

func purchaseTime(_ dsl.Maybe[string], purchase dsl.Maybe[Purchase], _ []operators.Header, _ int64) int64 {
	p, ok := purchase.Get()
	if !ok || p.TS <= 0 {
		return -1
	}
	return p.TS
}

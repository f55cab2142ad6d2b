package clickstream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func ev(id, user string, at time.Time) schemas.ClickEvent {
	return schemas.ClickEvent{EventID: id, Type: schemas.EventView, UserID: user, ItemID: "i1", Timestamp: at}
}

func newQuality(t *testing.T, cfg QualityConfig) *Quality {
	t.Helper()
	q, err := NewQuality(cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func count(vs []Verdict, want Verdict) int {
	n := 0
	for _, v := range vs {
		if v == want {
			n++
		}
	}
	return n
}

func TestDedup(t *testing.T) {
	q := newQuality(t, QualityConfig{DedupWindow: 100})
	b1 := []schemas.ClickEvent{ev("a", "u", t0), ev("b", "u", t0), ev("a", "u", t0)}
	v, commit := q.Check(b1, nil)
	if want := []Verdict{Keep, Keep, Duplicate}; !slices.Equal(v, want) {
		t.Fatalf("first batch %v, want %v", v, want)
	}
	// Not committed (the sink failed): the retry is judged the same.
	v, commit = q.Check(b1, nil)
	if want := []Verdict{Keep, Keep, Duplicate}; !slices.Equal(v, want) {
		t.Fatalf("retried batch %v, want %v", v, want)
	}
	commit()
	v, _ = q.Check([]schemas.ClickEvent{ev("a", "u", t0), ev("c", "u", t0)}, nil)
	if want := []Verdict{Duplicate, Keep}; !slices.Equal(v, want) {
		t.Fatalf("after commit %v, want %v", v, want)
	}
	if got := testutil.ToFloat64(q.duplicates); got != 1 {
		t.Errorf("duplicates metric %v, want 1 (the committed batch's in-batch duplicate)", got)
	}
}

// TestDedupWindow: the last DedupWindow/2 ids are always remembered; ids
// beyond DedupWindow are forgotten, so memory stays bounded.
func TestDedupWindow(t *testing.T) {
	const window = 100
	q := newQuality(t, QualityConfig{DedupWindow: window})
	for i := range 1000 {
		_, commit := q.Check([]schemas.ClickEvent{ev(fmt.Sprint(i), "u", t0)}, nil)
		commit()
		if n := q.WindowLen(); n > window {
			t.Fatalf("window holds %d ids, limit %d", n, window)
		}
	}
	var recent, old []schemas.ClickEvent
	for i := 1000 - window/2; i < 1000; i++ {
		recent = append(recent, ev(fmt.Sprint(i), "u", t0))
	}
	for i := range 1000 - window {
		old = append(old, ev(fmt.Sprint(i), "u", t0))
	}
	if v, _ := q.Check(recent, nil); count(v, Duplicate) != len(recent) {
		t.Errorf("%d of the last %d ids recognised", count(v, Duplicate), len(recent))
	}
	if v, _ := q.Check(old, nil); count(v, Keep) != len(old) {
		t.Errorf("%d of %d ids older than the window kept", count(v, Keep), len(old))
	}
}

func TestRateLimit(t *testing.T) {
	q := newQuality(t, QualityConfig{RateLimit: RateLimitConfig{EventsPerSecond: 20, Burst: 100, MaxUsers: 10}})
	var burst []schemas.ClickEvent
	for i := range 150 {
		burst = append(burst, ev(fmt.Sprint(i), "bot", t0))
	}
	burst = append(burst, ev("human", "human", t0))
	v, commit := q.Check(burst, nil)
	if k, l := count(v, Keep), count(v, Limited); k != 101 || l != 50 || v[150] != Keep {
		t.Fatalf("burst: kept %d, limited %d (want 101, 50, the other user kept)", k, l)
	}
	commit()
	// The limited events did not enter the dedup window: delivered again
	// (their dead letters unconfirmed), they are judged limited again.
	q2 := newQuality(t, QualityConfig{DedupWindow: 1000, RateLimit: RateLimitConfig{EventsPerSecond: 20, Burst: 100, MaxUsers: 10}})
	v, commit2 := q2.Check(burst, nil)
	commit2()
	if again, _ := q2.Check(burst[100:150], nil); count(again, Limited) != 50 {
		t.Errorf("redelivered limited events: %d limited of 50 (verdicts %v)", count(again, Limited), again)
	}
	// One second later the bot has earned 20 tokens.
	var later []schemas.ClickEvent
	for i := range 30 {
		later = append(later, ev(fmt.Sprint("l", i), "bot", t0.Add(time.Second)))
	}
	v, commit = q.Check(later, nil)
	if k := count(v, Keep); k != 20 {
		t.Fatalf("a second later: kept %d, want 20", k)
	}
	commit()
	if got := testutil.ToFloat64(q.limited); got != 60 {
		t.Errorf("rate_limited metric %v, want 60", got)
	}
}

// TestRateLimitEventTime: a backlog of a user's events at 10/s of event time
// passes whatever speed it is consumed at.
func TestRateLimitEventTime(t *testing.T) {
	q := newQuality(t, QualityConfig{RateLimit: RateLimitConfig{EventsPerSecond: 20, Burst: 5, MaxUsers: 10}})
	var backlog []schemas.ClickEvent
	for i := range 1000 {
		backlog = append(backlog, ev(fmt.Sprint(i), "u", t0.Add(time.Duration(i)*100*time.Millisecond)))
	}
	v, _ := q.Check(backlog, nil)
	if k := count(v, Keep); k != 1000 {
		t.Fatalf("kept %d of 1000 events at 10/s", k)
	}
}

// TestRateLimitUsersBounded: at most MaxUsers users are tracked.
func TestRateLimitUsersBounded(t *testing.T) {
	q := newQuality(t, QualityConfig{RateLimit: RateLimitConfig{EventsPerSecond: 1, Burst: 1, MaxUsers: 10}})
	for i := range 100 {
		_, commit := q.Check([]schemas.ClickEvent{ev(fmt.Sprint(i), fmt.Sprint("u", i), t0)}, nil)
		commit()
		q.mu.Lock()
		n := len(q.users) + len(q.oldUsers)
		q.mu.Unlock()
		if n > 10 {
			t.Fatalf("%d users tracked, limit 10", n)
		}
	}
}

// TestFilter: Filter keeps what Check keeps, in order, and commits at once:
// the next call sees the kept ids and the spent tokens.
func TestFilter(t *testing.T) {
	q := newQuality(t, QualityConfig{DedupWindow: 100, RateLimit: RateLimitConfig{EventsPerSecond: 1, Burst: 2, MaxUsers: 10}})
	ids := func(evs []schemas.ClickEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.EventID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []schemas.ClickEvent
		want []string
	}{
		{"duplicate in the batch and a bot over its burst",
			[]schemas.ClickEvent{ev("a", "u", t0), ev("a", "u", t0), ev("b", "bot", t0), ev("c", "bot", t0), ev("d", "bot", t0)},
			[]string{"a", "b", "c"}},
		{"committed: ids seen and tokens spent",
			[]schemas.ClickEvent{ev("a", "u", t0), ev("b", "bot", t0), ev("e", "bot", t0), ev("f", "u", t0)},
			[]string{"f"}},
		{"a second later, one token earned",
			[]schemas.ClickEvent{ev("g", "bot", t0.Add(time.Second)), ev("h", "bot", t0.Add(time.Second))},
			[]string{"g"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(q.Filter(tc.in)); !slices.Equal(got, tc.want) {
				t.Fatalf("Filter kept %v, want %v", got, tc.want)
			}
		})
	}
	if d, l := testutil.ToFloat64(q.duplicates), testutil.ToFloat64(q.limited); d != 3 || l != 3 {
		t.Errorf("metrics: %v duplicates, %v limited, want 3 and 3", d, l)
	}
}

func TestQualityConfigValidate(t *testing.T) {
	bad := QualityConfig{DedupWindow: -1, RateLimit: RateLimitConfig{EventsPerSecond: 5}}
	err := bad.Validate("clickstream.quality")
	for _, key := range []string{"clickstream.quality.dedup_window", "clickstream.quality.rate_limit.burst", "clickstream.quality.rate_limit.max_users"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
	if err := DefaultQualityConfig().Validate("q"); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

// memAnalytics is an in-memory pipeline.Analytics that fails its first
// failures calls of InsertEvents.
type memAnalytics struct {
	mu       sync.Mutex
	failures int
	events   []schemas.ClickEvent
}

func (m *memAnalytics) InsertEvents(_ context.Context, evs []schemas.ClickEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures > 0 {
		m.failures--
		return errors.New("server unavailable")
	}
	m.events = append(m.events, evs...)
	return nil
}
func (m *memAnalytics) InsertItems(context.Context, []schemas.CatalogChange) error { return nil }
func (m *memAnalytics) InsertRecommendations(context.Context, []pipeline.ServedRecommendation) error {
	return nil
}
func (m *memAnalytics) Close() error { return nil }

// TestSinkRetryKeepsEvents: a batch whose analytics insert fails is retried
// by the runtime; the retry stores every event (none mistaken for its own
// duplicate), drops the real duplicate and dead-letters the bot's excess.
func TestSinkRetryKeepsEvents(t *testing.T) {
	q := newQuality(t, QualityConfig{DedupWindow: 1000, RateLimit: RateLimitConfig{EventsPerSecond: 1, Burst: 2, MaxUsers: 10}})
	an := &memAnalytics{failures: 1}
	tally := NewTally(nil)
	sink := NewSink(Options{Limits: schemas.DefaultLimits(), Now: func() time.Time { return t0.Add(time.Minute) }, Tally: tally, Quality: q, Analytics: an})
	var batch []pipeline.Record
	for i, v := range []string{
		`{"event_id":"e1","type":"view","user_id":"u1","item_id":"i1","timestamp":"2026-11-28T12:00:00Z"}`,
		`{"event_id":"e2","type":"click","user_id":"u1","item_id":"i1","timestamp":"2026-11-28T12:00:00Z"}`,
		`{"event_id":"e2","type":"click","user_id":"u1","item_id":"i1","timestamp":"2026-11-28T12:00:00Z"}`,
		`{"event_id":"e3","type":"view","user_id":"u1","item_id":"i1","timestamp":"2026-11-28T12:00:00Z"}`,
		`{"event_id":"e4","type":"view","user_id":"u2","item_id":"i1","timestamp":"2026-11-28T12:00:00Z"}`,
		`{"event_id":"e5","type":"bogus","user_id":"u2","timestamp":"2026-11-28T12:00:00Z"}`,
	} {
		batch = append(batch, pipeline.Record{Offset: int64(i), Value: []byte(v)})
	}
	if _, err := sink.Write(context.Background(), batch); err == nil {
		t.Fatal("first write succeeded; the analytics store failed it")
	}
	res, err := sink.Write(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range an.events {
		ids = append(ids, e.EventID)
	}
	if want := []string{"e1", "e2", "e4"}; !slices.Equal(ids, want) {
		t.Errorf("stored %v, want %v", ids, want)
	}
	var rejected []int64
	for _, r := range res.Rejected {
		rejected = append(rejected, r.Record.Offset)
		if r.Record.Offset == 3 && !errors.Is(r.Err, ErrRateLimited) {
			t.Errorf("offset 3 rejected for %v, want the rate limit", r.Err)
		}
	}
	if !slices.Equal(rejected, []int64{5, 3}) {
		t.Errorf("rejected offsets %v, want [5 3] (invalid, then rate-limited)", rejected)
	}
	if got := tally.Total(); got != 3 {
		t.Errorf("tally %d, want 3", got)
	}
}

// BenchmarkDedupWindow reports the memory the dedup window takes per event
// id once full (the default window of 1M ids).
func BenchmarkDedupWindow(b *testing.B) {
	const window = 1_000_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		q, err := NewQuality(QualityConfig{DedupWindow: window}, nil)
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]schemas.ClickEvent, 1000)
		for n := 0; n < 2*window; n += len(batch) {
			for i := range batch {
				batch[i] = ev(fmt.Sprintf("evt-%012d", n+i), "u", t0)
			}
			_, commit := q.Check(batch, nil)
			commit()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := q.WindowLen()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(held), "bytes/id")
		b.ReportMetric(float64(held), "ids-held")
		runtime.KeepAlive(q)
	}
}

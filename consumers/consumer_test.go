package consumers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/broker/brokertest"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/kafka/kafkatest"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) {
	if brokertest.Serve() { // the benchmarks' broker child
		return
	}
	goleak.VerifyTestMain(m)
}

const topic = "test.events"

// cluster returns a Kafka cluster with topic on 3 partitions: kfake, or
// the real broker of STREAMREC_TEST_KAFKA (kafkatest), reached through its
// SASL_SSL listener (SCRAM-SHA-512 over TLS) when it has one.
func cluster(t *testing.T) kafka.Config {
	t.Helper()
	kc := kafkatest.Cluster(t, 3, topic)
	if secure, ok := kafkatest.Secure(t, "SCRAM-SHA-512"); ok {
		kc = secure
	}
	t.Logf("kafka: %s, through %v (sasl %q, tls %v)", kafkatest.Backend(), kc.Brokers, kc.SASL.Mechanism, kc.TLS.Enabled)
	return kc
}

func client(t *testing.T, kc kafka.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base, err := kc.Opts(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes n records with values "0".."n-1", keyed so they spread over
// the partitions.
func produce(t *testing.T, kc kafka.Config, n int) {
	t.Helper()
	cl := client(t, kc)
	rs := make([]*kgo.Record, n)
	for i := range rs {
		v := strconv.Itoa(i)
		rs[i] = &kgo.Record{Topic: topic, Key: []byte("k" + v), Value: []byte(v)}
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// testConfig is a config with fast timings for tests.
func testConfig(group string) Config {
	cfg := DefaultConfig(group, topic)
	cfg.Batch = pipeline.BatchPolicy{MaxRecords: 50, MaxBytes: 1 << 20, MaxWait: 5 * time.Millisecond}
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.Retry = Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

// running is a consumer running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	m      *Metrics
}

func start(t *testing.T, kc kafka.Config, cfg Config, sink pipeline.Sink) *running {
	t.Helper()
	m := NewMetrics(nil)
	c, err := New(kc, cfg, sink, WithMetrics(m), WithClientOpts(kgo.SessionTimeout(6*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), m: m}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the consumer and waits for Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop within 30s")
		return nil
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// recorder is a sink that records the values it confirmed.
type recorder struct {
	mu     sync.Mutex
	seen   map[string]int // value -> times confirmed
	byPart map[int32]int64
	total  atomic.Int64
	// fn, if set, decides the result of each batch.
	fn func(batch []pipeline.Record) (pipeline.Result, error)
}

func newRecorder(fn func([]pipeline.Record) (pipeline.Result, error)) *recorder {
	return &recorder{seen: map[string]int{}, byPart: map[int32]int64{}, fn: fn}
}

func (r *recorder) Write(_ context.Context, batch []pipeline.Record) (pipeline.Result, error) {
	var res pipeline.Result
	if r.fn != nil {
		var err error
		if res, err = r.fn(batch); err != nil {
			return res, err
		}
	}
	rejected := map[int64]bool{}
	for _, rj := range res.Rejected {
		rejected[rj.Record.Offset] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range batch {
		if !rejected[rec.Offset] {
			r.seen[string(rec.Value)]++
			r.total.Add(1)
		}
		r.byPart[rec.Partition] = max(r.byPart[rec.Partition], rec.Offset+1)
	}
	return res, nil
}

func (r *recorder) count() int64 { return r.total.Load() }

func (r *recorder) values() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out
}

// committed returns the group's committed offsets on topic by partition.
func committed(t *testing.T, kc kafka.Config, group string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(client(t, kc))
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// endOffsets returns the high watermarks of topic by partition.
func endOffsets(t *testing.T, kc kafka.Config, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(client(t, kc))
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

func assertAllOnce(t *testing.T, got map[string]int, n int) {
	t.Helper()
	for i := range n {
		if c := got[strconv.Itoa(i)]; c != 1 {
			t.Errorf("record %d confirmed %d times, want exactly once", i, c)
		}
	}
	if len(got) != n {
		t.Errorf("sink confirmed %d distinct records, want %d", len(got), n)
	}
}

func TestCommitOnlyAfterSinkConfirms(t *testing.T) {
	kc := cluster(t)
	const n = 300
	produce(t, kc, n)

	// A sink that is down: every write fails with a transient error.
	var attempts atomic.Int64
	down := newRecorder(func([]pipeline.Record) (pipeline.Result, error) {
		attempts.Add(1)
		return pipeline.Result{}, errors.New("sink unavailable")
	})
	cfg := testConfig("g-commit")
	// The soft stop keeps retrying the down sink until this deadline.
	cfg.ShutdownTimeout = 300 * time.Millisecond
	r := start(t, kc, cfg, down)
	eventually(t, 20*time.Second, "retries of the failing sink", func() bool { return attempts.Load() >= 10 })
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := committed(t, kc, "g-commit"); len(got) != 0 {
		t.Fatalf("offsets committed while the sink never confirmed: %v", got)
	}
	if down.count() != 0 {
		t.Fatalf("failing sink confirmed %d records", down.count())
	}
	if got := testutil.ToFloat64(r.m.retries.WithLabelValues("g-commit", topic)); got < 1 {
		t.Errorf("retries metric = %v, want >= 1", got)
	}

	// After a restart with a healthy sink every record comes again, once.
	up := newRecorder(nil)
	r2 := start(t, kc, testConfig("g-commit"), up)
	eventually(t, 20*time.Second, "all records after restart", func() bool { return up.count() >= n })
	if err := r2.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertAllOnce(t, up.values(), n)
	if got, want := committed(t, kc, "g-commit"), endOffsets(t, kc, topic); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("committed %v, want end offsets %v", got, want)
	}
}

func TestDeadLetter(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(*Config)
		sink func([]pipeline.Record) (pipeline.Result, error)
		// bad says which values must be dead-lettered, and with what error.
		bad    func(v int) bool
		reason string
	}{
		{
			name: "rejected records",
			sink: func(batch []pipeline.Record) (pipeline.Result, error) {
				var res pipeline.Result
				for _, r := range batch {
					if v, _ := strconv.Atoi(string(r.Value)); v%7 == 0 {
						res.Reject(r, fmt.Errorf("value %d is a multiple of 7", v))
					}
				}
				return res, nil
			},
			bad:    func(v int) bool { return v%7 == 0 },
			reason: "is a multiple of 7",
		},
		{
			name: "permanent batch error",
			cfg:  func(c *Config) { c.Batch.MaxRecords = 1 },
			sink: func(batch []pipeline.Record) (pipeline.Result, error) {
				if v, _ := strconv.Atoi(string(batch[0].Value)); v%5 == 0 {
					return pipeline.Result{}, pipeline.Permanent(fmt.Errorf("cannot store %d", v))
				}
				return pipeline.Result{}, nil
			},
			bad:    func(v int) bool { return v%5 == 0 },
			reason: "cannot store",
		},
		{
			name: "transient error past max attempts",
			cfg:  func(c *Config) { c.Batch.MaxRecords = 1; c.Retry.MaxAttempts = 3 },
			sink: func(batch []pipeline.Record) (pipeline.Result, error) {
				if v, _ := strconv.Atoi(string(batch[0].Value)); v%9 == 0 {
					return pipeline.Result{}, fmt.Errorf("timeout storing %d", v)
				}
				return pipeline.Result{}, nil
			},
			bad:    func(v int) bool { return v%9 == 0 },
			reason: "timeout storing",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := cluster(t)
			const n = 100
			produce(t, kc, n)
			cfg := testConfig("g-dlq")
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			rec := newRecorder(tc.sink)
			wantBad := 0
			for i := range n {
				if tc.bad(i) {
					wantBad++
				}
			}
			r := start(t, kc, cfg, rec)
			eventually(t, 20*time.Second, "good records", func() bool { return rec.count() >= int64(n-wantBad) })

			// Read the dead-letter topic back.
			dl := client(t, kc, kgo.ConsumeTopics(topic+schemas.DLQSuffix), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			var got []*kgo.Record
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for len(got) < wantBad && ctx.Err() == nil {
				dl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
			}
			if len(got) != wantBad {
				t.Fatalf("dead-letter topic has %d records, want %d", len(got), wantBad)
			}
			for _, d := range got {
				v, _ := strconv.Atoi(string(d.Value))
				if !tc.bad(v) {
					t.Errorf("record %d dead-lettered but is good", v)
				}
				h := map[string]string{}
				for _, kv := range d.Headers {
					h[kv.Key] = string(kv.Value)
				}
				if !strings.Contains(h[schemas.HeaderError], tc.reason) {
					t.Errorf("record %d: error header %q lacks %q", v, h[schemas.HeaderError], tc.reason)
				}
				if h[schemas.HeaderSourceTopic] != topic {
					t.Errorf("record %d: source-topic %q", v, h[schemas.HeaderSourceTopic])
				}
				if h[schemas.HeaderSourcePartition] == "" || h[schemas.HeaderSourceOffset] == "" {
					t.Errorf("record %d: source partition/offset headers missing: %v", v, h)
				}
				if string(d.Key) != "k"+strconv.Itoa(v) {
					t.Errorf("record %d: key %q not kept", v, d.Key)
				}
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if c, e := committed(t, kc, "g-dlq"), endOffsets(t, kc, topic); fmt.Sprint(c) != fmt.Sprint(e) {
				t.Errorf("committed %v, want end offsets %v (dead-lettered records count as done)", c, e)
			}
			if got := testutil.ToFloat64(r.m.records.WithLabelValues("g-dlq", topic, "dlq")); int(got) != wantBad {
				t.Errorf("dlq metric = %v, want %d", got, wantBad)
			}
		})
	}
}

func TestGracefulShutdownLosesNothing(t *testing.T) {
	kc := cluster(t)
	const n = 3000
	produce(t, kc, n)

	// Stop the consumer while it is busy: after the sink has confirmed a
	// third of the records.
	first := newRecorder(nil)
	r := start(t, kc, testConfig("g-shutdown"), first)
	eventually(t, 20*time.Second, "a third of the records", func() bool { return first.count() >= n/3 })
	if err := r.stop(t); err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
	// Exactly what the sink confirmed is committed: soft stop drained every
	// buffered record through the sink, and the final commit covered it.
	first.mu.Lock()
	processed := fmt.Sprint(first.byPart)
	first.mu.Unlock()
	if got := fmt.Sprint(committed(t, kc, "g-shutdown")); got != processed {
		t.Fatalf("committed %s, want what the sink confirmed %s", got, processed)
	}

	// The restarted consumer gets exactly the rest.
	second := newRecorder(nil)
	r2 := start(t, kc, testConfig("g-shutdown"), second)
	eventually(t, 20*time.Second, "the rest", func() bool { return first.count()+second.count() >= n })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	all := first.values()
	for v, c := range second.values() {
		all[v] += c
	}
	assertAllOnce(t, all, n)
}

func TestBackpressurePausesFetching(t *testing.T) {
	kc := cluster(t)
	const n = 4000
	produce(t, kc, n)

	cfg := testConfig("g-pause")
	cfg.MaxBufferedRecords = 100
	cfg.MaxPollRecords = 50
	cfg.FetchMaxBytes = 4 << 10
	gate := make(chan struct{})
	var once sync.Once
	var blocked atomic.Int64
	rec := newRecorder(func([]pipeline.Record) (pipeline.Result, error) {
		blocked.Add(1)
		<-gate
		return pipeline.Result{}, nil
	})
	r := start(t, kc, cfg, rec)
	t.Cleanup(func() { once.Do(func() { close(gate) }) })

	// With the sink stuck, every partition fills its buffer and pauses.
	parts := float64(3)
	eventually(t, 20*time.Second, "all partitions paused", func() bool {
		return testutil.ToFloat64(r.m.paused.WithLabelValues("g-pause", topic)) == parts
	})
	buffered := testutil.ToFloat64(r.m.buffered.WithLabelValues("g-pause", topic))
	// Bound: per partition one full buffer plus one poll's records, plus the
	// batch each worker holds in the sink.
	bound := parts * float64(cfg.MaxBufferedRecords+cfg.MaxPollRecords)
	if buffered > bound {
		t.Fatalf("buffered %v records while paused, bound %v", buffered, bound)
	}
	if buffered+float64(3*cfg.Batch.MaxRecords) >= n {
		t.Fatalf("buffered %v of %d records: fetching did not pause", buffered, n)
	}

	// Release the sink: everything arrives exactly once.
	once.Do(func() { close(gate) })
	eventually(t, 30*time.Second, "all records", func() bool { return rec.count() >= n })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	assertAllOnce(t, rec.values(), n)
	if p := testutil.ToFloat64(r.m.pauses.WithLabelValues("g-pause", topic)); p < parts {
		t.Errorf("pauses metric = %v, want >= %v", p, parts)
	}
}

func TestRebalanceHandsOverWithoutLoss(t *testing.T) {
	kc := cluster(t)
	const n = 2000
	produce(t, kc, n)

	// Member a stalls after 300 records, so most of the topic is still
	// unconsumed when member b joins and takes partitions over.
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	var aSeen atomic.Int64
	a := newRecorder(func(batch []pipeline.Record) (pipeline.Result, error) {
		if aSeen.Add(int64(len(batch))) > 300 {
			<-gate
		}
		return pipeline.Result{}, nil
	})
	ra := start(t, kc, testConfig("g-rebalance"), a)
	eventually(t, 20*time.Second, "member a stalled", func() bool { return aSeen.Load() > 300 })
	b := newRecorder(nil)
	rb := start(t, kc, testConfig("g-rebalance"), b)
	// a's revoke starts (its assigned gauge drops) and waits for its
	// in-flight batch, which the gate holds; release it then.
	eventually(t, 20*time.Second, "a revoking partitions for b", func() bool {
		return testutil.ToFloat64(ra.m.assigned.WithLabelValues("g-rebalance")) < 3
	})
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafkatest.WaitGroupStable(ctx, kc, "g-rebalance", 2); err != nil {
		t.Fatalf("group never stable with both members: %v", err)
	}
	union := func() map[string]int {
		all := a.values()
		for v, c := range b.values() {
			all[v] += c
		}
		return all
	}
	eventually(t, 30*time.Second, "all records across both members", func() bool { return len(union()) >= n })
	if err := ra.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := rb.stop(t); err != nil {
		t.Fatal(err)
	}
	if b.count() == 0 {
		t.Fatal("member b confirmed nothing: no partitions were handed over")
	}
	// At least once: every record confirmed. A revoke lets the old owner
	// finish its in-flight batch and commits it, so duplicates are rare but
	// allowed.
	all := union()
	for i := range n {
		if all[strconv.Itoa(i)] == 0 {
			t.Fatalf("record %d never confirmed", i)
		}
	}
	if c, e := committed(t, kc, "g-rebalance"), endOffsets(t, kc, topic); fmt.Sprint(c) != fmt.Sprint(e) {
		t.Errorf("committed %v, want end offsets %v", c, e)
	}
	t.Logf("a confirmed %d, b confirmed %d, %d distinct", a.count(), b.count(), len(all))
}

func TestConfigValidateNamesKey(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty group", func(c *Config) { c.Group = "" }, "x.group must not be empty"},
		{"no topics", func(c *Config) { c.Topics = nil }, "x.topics must not be empty"},
		{"buffer", func(c *Config) { c.MaxBufferedRecords = 0 }, "x.max_buffered_records must be > 0"},
		{"start offset", func(c *Config) { c.StartOffset = "middle" }, `x.start_offset: "middle" is not earliest or latest`},
		{"batch", func(c *Config) { c.Batch.MaxRecords = 0 }, "x.batch.max_records must be > 0"},
		{"retry", func(c *Config) { c.Retry.Max = 0 }, "x.retry.max must be >= x.retry.initial"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig("g", "t")
			tc.mod(&cfg)
			err := cfg.Validate("x")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if err := DefaultConfig("g", "t").Validate("x"); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
}

// TestInFlightCommitsInOrder: with several batches of a partition in the
// sink at once, a later batch confirmed before an earlier one is not
// committed past the gap: stopped while the first batch hangs, nothing of
// the partition is committed, and after a restart every record comes again
// and everything ends committed.
func TestInFlightCommitsInOrder(t *testing.T) {
	kc := cluster(t)
	cl := client(t, kc)
	var rs []*kgo.Record
	for i := range 20 {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("same-key"), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var laterDone atomic.Int64
	first := make(chan struct{}) // never closed: the first batch hangs until the hard stop
	hang := pipeline.SinkFunc(func(ctx context.Context, batch []pipeline.Record) (pipeline.Result, error) {
		if batch[0].Offset == 0 {
			select {
			case <-first:
			case <-ctx.Done():
			}
			return pipeline.Result{}, ctx.Err()
		}
		laterDone.Add(int64(len(batch)))
		return pipeline.Result{}, nil
	})
	cfg := testConfig("g-inflight")
	cfg.Batch.MaxRecords = 5
	cfg.MaxInFlight = 4
	cfg.ShutdownTimeout = 200 * time.Millisecond
	r := start(t, kc, cfg, hang)
	eventually(t, 20*time.Second, "later batches confirmed while the first hangs", func() bool { return laterDone.Load() >= 15 })
	_ = r.stop(t) // the hard stop ends the hanging batch
	if got := committed(t, kc, "g-inflight"); len(got) != 0 {
		t.Fatalf("committed %v past an unconfirmed batch", got)
	}

	up := newRecorder(nil)
	cfg.ShutdownTimeout = 10 * time.Second
	r2 := start(t, kc, cfg, up)
	eventually(t, 20*time.Second, "all records after restart", func() bool { return up.count() >= 20 })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	assertAllOnce(t, up.values(), 20)
	if got := committed(t, kc, "g-inflight"); got[0] != 20 {
		t.Errorf("committed %v, want partition 0 at 20", got)
	}
}

// TestDeadLetterOversizeRecord: issue 12, finding 2. A record of 1.02 MB,
// which the broker accepts (max.message.bytes 1,048,588) and the sink
// rejects, must not wedge its partition: its dead letter is written
// truncated (the whole would not fit), and the records after it are
// processed and committed. Before the fix the dead-letter produce failed
// with MESSAGE_TOO_LARGE for ever and nothing after it was committed.
func TestDeadLetterOversizeRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare runs before the consumer starts; after, once it runs.
		prepare, after func(t *testing.T, adm *kadm.Client)
		size           int
		whole          bool // the dead letter is the whole record
	}{
		// The record: the dead-letter producer's batch limit is the
		// topic's, so the whole dead letter is written.
		{name: "under the topic's limit", size: 1_020_000, whole: true},
		// The record fits its topic, its dead letter (with headers) does
		// not: the client knows the limit (read from the cluster) and
		// truncates before sending.
		{name: "over the topic's limit", size: 1_048_000},
		// The limit shrinks after the consumer read it: the broker refuses
		// the whole dead letter, and the truncated one is sent instead.
		{name: "refused by the broker", size: 200_000,
			prepare: func(t *testing.T, adm *kadm.Client) {
				if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, topic+schemas.DLQSuffix); err != nil {
					t.Fatal(err)
				}
			},
			after: func(t *testing.T, adm *kadm.Client) {
				v := "100000"
				rs, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, topic+schemas.DLQSuffix)
				if err == nil {
					_, err = rs.On(topic+schemas.DLQSuffix, nil)
				}
				if err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := cluster(t)
			adm := kadm.NewClient(client(t, kc))
			if tc.prepare != nil {
				tc.prepare(t, adm)
			}
			const limit = 64 << 10 // the decoder's limits.max_bytes
			rec := newRecorder(func(batch []pipeline.Record) (pipeline.Result, error) {
				var res pipeline.Result
				for _, r := range batch {
					if len(r.Value) > limit {
						res.Reject(r, fmt.Errorf("record: %d bytes exceeds max %d", len(r.Value), limit))
					}
				}
				return res, nil
			})
			r := start(t, kc, testConfig("g-big"), rec)
			if tc.after != nil {
				// The consumer has read the dead-letter limit once it
				// has partitions.
				eventually(t, 20*time.Second, "assignment", func() bool {
					return testutil.ToFloat64(r.m.assigned.WithLabelValues("g-big")) == 3
				})
				tc.after(t, adm)
			}
			// One partition (one key): the poison record, then good ones.
			// Random, so compression does not shrink it below the limits.
			big := make([]byte, tc.size)
			_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
			recs := []*kgo.Record{{Topic: topic, Key: []byte("k"), Value: []byte("before")},
				{Topic: topic, Key: []byte("k"), Value: big}}
			for i := range 5 {
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("after-" + strconv.Itoa(i))})
			}
			pr := client(t, kc, kgo.ProducerBatchMaxBytes(2<<20), kgo.ProducerLinger(0))
			for _, x := range recs { // one at a time: each its own batch
				if err := pr.ProduceSync(context.Background(), x).FirstErr(); err != nil {
					t.Fatalf("produce %d bytes: %v", len(x.Value), err)
				}
			}
			eventually(t, 20*time.Second, "the records after the oversize one", func() bool { return rec.count() == 6 })

			dl := client(t, kc, kgo.ConsumeTopics(topic+schemas.DLQSuffix), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxBytes(4<<20))
			var got *kgo.Record
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for got == nil && ctx.Err() == nil {
				dl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = r })
			}
			if got == nil {
				t.Fatal("no dead letter")
			}
			h := map[string]string{}
			for _, kv := range got.Headers {
				h[kv.Key] = string(kv.Value)
			}
			wantTruncated := 1.0
			if tc.whole {
				wantTruncated = 0
				if !bytes.Equal(got.Value, big) || h[schemas.HeaderOriginalSize] != "" {
					t.Errorf("dead letter of %d bytes (original-size %q), want the whole record", len(got.Value), h[schemas.HeaderOriginalSize])
				}
			}
			sum := sha256.Sum256(big)
			if !tc.whole && (h[schemas.HeaderOriginalSize] != strconv.Itoa(tc.size) || h[schemas.HeaderOriginalSHA256] != hex.EncodeToString(sum[:])) {
				t.Errorf("original-size %q, original-sha256 %q; want %d and the value's hash", h[schemas.HeaderOriginalSize], h[schemas.HeaderOriginalSHA256], tc.size)
			}
			if !tc.whole && (!bytes.HasPrefix(big, got.Value) || len(got.Value) == 0 || len(got.Value) >= 100_000) {
				t.Errorf("dead letter value is %d bytes, want a prefix of the record", len(got.Value))
			}
			if !strings.Contains(h[schemas.HeaderError], "exceeds max") || h[schemas.HeaderSourceOffset] != "1" || string(got.Key) != "k" {
				t.Errorf("dead letter headers %v key %q", h, got.Key)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			ends := endOffsets(t, kc, topic)
			maps.DeleteFunc(ends, func(_ int32, end int64) bool { return end == 0 })
			if c := committed(t, kc, "g-big"); fmt.Sprint(c) != fmt.Sprint(ends) {
				t.Errorf("committed %v, want end offsets %v", c, ends)
			}
			if got := testutil.ToFloat64(r.m.truncated.WithLabelValues("g-big", topic)); got != wantTruncated {
				t.Errorf("truncated metric = %v, want %v", got, wantTruncated)
			}
		})
	}
}

// A partition whose sink keeps failing is reported stalled (readiness), and
// stops being stalled once its batches are confirmed again.
func TestStalledPartitions(t *testing.T) {
	kc := cluster(t)
	var down atomic.Bool
	down.Store(true)
	rec := newRecorder(func([]pipeline.Record) (pipeline.Result, error) {
		if down.Load() {
			return pipeline.Result{}, errors.New("clickhouse: connection refused")
		}
		return pipeline.Result{}, nil
	})
	m := NewMetrics(nil)
	c, err := New(kc, testConfig("g-stall"), rec, WithMetrics(m), WithClientOpts(kgo.SessionTimeout(6*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	produce(t, kc, 30)
	const after = 50 * time.Millisecond
	eventually(t, 20*time.Second, "three stalled partitions", func() bool { return len(c.Stalled(after)) == 3 })
	for _, st := range c.Stalled(after) {
		if st.Group != "g-stall" || st.Topic != topic || st.Waiting == 0 || time.Since(st.Since) <= after {
			t.Errorf("stall %+v", st)
		}
	}
	down.Store(false)
	eventually(t, 20*time.Second, "every record", func() bool { return rec.count() == 30 })
	// The recorder counts inside Write; progress is recorded after it.
	eventually(t, 20*time.Second, "no stalled partition", func() bool { return len(c.Stalled(after)) == 0 })
	if n := testutil.CollectAndCount(m.progress); n != 3 {
		t.Errorf("progress gauge has %d partitions, want 3", n)
	}
}

// TestDeadLetterLimitShrinks: the dead-letter topic's max.message.bytes
// shrinks after the consumer read it. The broker then refuses whole batches
// of dead letters; each must still be written once, in the largest form
// that fits, matched to its own record (results come back in completion
// order, across the dead-letter topic's partitions), and the partition
// must move on.
func TestDeadLetterLimitShrinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int // of the rejected records, in offset order
	}{
		{"one large among small ones", append([]int{200_000}, slices.Repeat([]int{1}, 12)...)},
		{"many small ones over the limit together", slices.Repeat([]int{10_000}, 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := cluster(t)
			const src = "one.partition"
			adm := kadm.NewClient(client(t, kc))
			for topic, parts := range map[string]int32{src: 1, src + schemas.DLQSuffix: 3} {
				if _, err := adm.CreateTopic(context.Background(), parts, 1, nil, topic); err != nil {
					t.Fatal(err)
				}
			}
			rec := newRecorder(func(batch []pipeline.Record) (pipeline.Result, error) {
				var res pipeline.Result
				for _, r := range batch {
					res.Reject(r, errors.New("rejected"))
				}
				return res, nil
			})
			cfg := testConfig("g-shrink")
			cfg.Topics = []string{src}
			r := start(t, kc, cfg, rec)
			eventually(t, 20*time.Second, "assignment", func() bool {
				return testutil.ToFloat64(r.m.assigned.WithLabelValues("g-shrink")) == 1
			})
			v := "100000"
			rs, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, src+schemas.DLQSuffix)
			if err == nil {
				_, err = rs.On(src+schemas.DLQSuffix, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			values := map[string][]byte{}
			var recs []*kgo.Record
			for i, n := range tc.sizes {
				val := make([]byte, n)
				_, _ = rand.NewChaCha8([32]byte{byte(i)}).Read(val)
				key := "k" + strconv.Itoa(i)
				values[key] = val
				recs = append(recs, &kgo.Record{Topic: src, Key: []byte(key), Value: val})
			}
			// In one produce: one batch of the source partition, so one
			// sink batch rejects them all at once.
			pr := client(t, kc, kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerLinger(50*time.Millisecond))
			if err := pr.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			dl := client(t, kc, kgo.ConsumeTopics(src+schemas.DLQSuffix), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := map[string][]*kgo.Record{}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for n := 0; n < len(recs) && ctx.Err() == nil; {
				dl.PollFetches(ctx).EachRecord(func(d *kgo.Record) { got[string(d.Key)] = append(got[string(d.Key)], d); n++ })
			}
			for key, val := range values {
				ds := got[key]
				if len(ds) != 1 {
					t.Errorf("record %s (%d bytes): %d dead letters, want 1", key, len(val), len(ds))
					continue
				}
				h := map[string]string{}
				for _, kv := range ds[0].Headers {
					h[kv.Key] = string(kv.Value)
				}
				whole := len(val) < 90_000
				if whole && (!bytes.Equal(ds[0].Value, val) || h[schemas.HeaderOriginalSize] != "") {
					t.Errorf("record %s (%d bytes): dead letter of %d bytes, original-size %q; want it whole", key, len(val), len(ds[0].Value), h[schemas.HeaderOriginalSize])
				}
				if !whole && (!bytes.HasPrefix(val, ds[0].Value) || h[schemas.HeaderOriginalSize] != strconv.Itoa(len(val))) {
					t.Errorf("record %s (%d bytes): dead letter of %d bytes, original-size %q; want it truncated", key, len(val), len(ds[0].Value), h[schemas.HeaderOriginalSize])
				}
			}
			eventually(t, 20*time.Second, "the offsets committed", func() bool {
				return committedAt(t, kc, "g-shrink", src) == int64(len(recs))
			})
		})
	}
}

// committedAt returns group's committed offset of partition 0 of topic.
func committedAt(t *testing.T, kc kafka.Config, group, topic string) int64 {
	t.Helper()
	offs, err := kadm.NewClient(client(t, kc)).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, 0)
	return o.At
}

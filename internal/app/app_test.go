package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/pipeline/clickhouse/chtest"
	"github.com/streamrec/streamrec/pipeline/duckdb"
	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/kafka/kafkatest"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(chtest.Wrap(m)) }

// start runs the all-in-one app on an embedded broker on a free port and
// returns its config and the broker's address. env adds STREAMREC_*
// settings. Without withModel the embedder is off (the catalog consumer
// then only validates).
func start(t testing.TB, withModel bool, env ...string) (config.Config, string, func()) {
	t.Helper()
	if kafkatest.Real() {
		// Apache Kafka (make test's second pass), emptied for this test;
		// Run creates the pipeline's topics on it.
		kc := kafkatest.Cluster(t, 3)
		env = append([]string{"STREAMREC_BROKER_EMBEDDED=false", "STREAMREC_KAFKA_BROKERS=" + strings.Join(kc.Brokers, ",")}, env...)
	}
	t.Logf("kafka: %s", kafkatest.Backend())
	env = append([]string{
		"STREAMREC_BROKER_PORT=0",
		"STREAMREC_BROKER_DATA_DIR=" + t.TempDir(),
		"STREAMREC_METRICS_ADDR=",
		"STREAMREC_CLICKSTREAM_BATCH_MAX_WAIT=5ms",
		"STREAMREC_CLICKSTREAM_COMMIT_INTERVAL=100ms",
		"STREAMREC_CATALOG_COMMIT_INTERVAL=100ms",
		"STREAMREC_CATALOG_BATCH_MAX_WAIT=5ms",
		"STREAMREC_VECTORSTORE_DATA_DIR=" + t.TempDir(),
		"STREAMREC_ANALYTICS_DIR=" + t.TempDir(),
		"STREAMREC_ANALYTICS_LOCAL_BATCH_MAX_WAIT=10ms",
		"STREAMREC_ANALYTICS_CLICKHOUSE_BATCH_MAX_WAIT=10ms",
		fmt.Sprintf("STREAMREC_EMBED_ENABLED=%v", withModel),
		"STREAMREC_EMBED_ONNX_LIBRARY_PATH=../../.cache/onnxruntime/libonnxruntime.so.1",
		"STREAMREC_EMBED_ONNX_MODEL_DIR=../../.cache/models/multilingual-e5-small-q4",
	}, env...)
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if withModel {
		if _, err := os.Stat(filepath.Join(cfg.Embed.ONNX.ModelDir, "model.onnx")); err != nil && os.Getenv("STREAMREC_REQUIRE_MODEL") == "" {
			t.Skip("model not available; run make artifacts")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- Run(ctx, cfg, log, Options{Broker: true, Kinds: []Kind{KindClickstream, KindCatalog, KindServing}, Ready: func(a string) { ready <- a }})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		cfg.Kafka.Brokers = []string{addr}
		return cfg, addr, stop
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("app not ready in 30s")
	}
	return cfg, "", stop
}

// waitCommitted waits until group has committed the end offset of every
// partition of topic, that is, consumed and confirmed everything.
func waitCommitted(t testing.TB, addr, group, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		// A fresh Apache Kafka answers COORDINATOR_NOT_AVAILABLE until its
		// offsets topic exists: errors only count at the deadline.
		behind := -1
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			var offs kadm.OffsetResponses
			if offs, err = adm.FetchOffsets(ctx, group); err == nil {
				behind = 0
				ends.Each(func(e kadm.ListedOffset) {
					if o, ok := offs.Lookup(topic, e.Partition); !ok && e.Offset > 0 || ok && o.At < e.Offset {
						behind++
					}
				})
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has %d partitions of %s not committed to the end (last error: %v)", group, behind, topic, err)
		}
		<-tick.C
	}
}

// readAll reads every record of topic.
func readAll(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	return kafkatest.Records(t, kafka.Config{Brokers: []string{addr}}, topic)
}

// TestKcatInterop: Debian's kcat (librdkafka) produces to the embedded
// broker; the clickstream consumer consumes the valid event and
// dead-letters the invalid one with its reason.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("STREAMREC_REQUIRE_KCAT") != "" {
			t.Fatal("kcat not installed (make test installs it)")
		}
		t.Skip("kcat not installed; `make test` installs it")
	}
	cfg, addr, _ := start(t, false)
	now := time.Now().UTC().Format(time.RFC3339)
	input := fmt.Sprintf("user-1|{\"event_id\":\"e-1\",\"type\":\"view\",\"user_id\":\"user-1\",\"item_id\":\"item-000001\",\"timestamp\":%q}\n", now) +
		"user-2|{\"event_id\":\"e-2\",\"type\":\"buy\",\"user_id\":\"user-2\",\"timestamp\":\"" + now + "\"}\n"
	cmd := exec.Command(kcat, "-P", "-b", addr, "-t", cfg.Topics.Clickstream.Name, "-K", "|", "-H", "source=kcat")
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	waitCommitted(t, addr, cfg.Clickstream.Group, cfg.Topics.Clickstream.Name)

	dlq := readAll(t, addr, cfg.Topics.Clickstream.Name+schemas.DLQSuffix)
	if len(dlq) != 1 {
		t.Fatalf("dead-letter topic has %d records, want 1 (the invalid event)", len(dlq))
	}
	h := map[string]string{}
	for _, kv := range dlq[0].Headers {
		h[kv.Key] = string(kv.Value)
	}
	if string(dlq[0].Key) != "user-2" || !strings.Contains(h[schemas.HeaderError], `event.type: unknown value "buy"`) {
		t.Errorf("dead letter key %q, error %q", dlq[0].Key, h[schemas.HeaderError])
	}
	if h["source"] != "kcat" {
		t.Errorf("original headers not kept: %v", h)
	}

	// And kcat reads what streamrec wrote.
	out, err := exec.Command(kcat, "-C", "-b", addr, "-t", cfg.Topics.Clickstream.Name+schemas.DLQSuffix, "-o", "beginning", "-e", "-q", "-f", "%k %s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), `user-2 {"event_id":"e-2","type":"buy"`) {
		t.Errorf("kcat read %q", out)
	}
}

// TestProduceAndConsume: synthetic traffic through the producer SDK is
// consumed by both consumer kinds, with nothing dead-lettered, and the
// catalog lands in the vector store behind the items alias.
func TestProduceAndConsume(t *testing.T) {
	cfg, addr, stop := start(t, true)
	cfg.Produce.Items = 50
	cfg.Produce.Events = 500
	cfg.Produce.Rate = 50_000
	rep, err := Produce(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsSent() != 500 || rep.CatalogItems != 50 || rep.Failed != 0 {
		t.Fatalf("report: %s", rep)
	}
	waitCommitted(t, addr, cfg.Clickstream.Group, cfg.Topics.Clickstream.Name)
	waitCommitted(t, addr, cfg.Catalog.Group, cfg.Topics.Catalog.Name)
	for _, topic := range []string{cfg.Topics.Clickstream.Name, cfg.Topics.Catalog.Name} {
		if dl := readAll(t, addr, topic+schemas.DLQSuffix); len(dl) != 0 {
			t.Errorf("%s: %d valid records dead-lettered: %s", topic, len(dl), dl[0].Headers)
		}
	}
	if got := len(readAll(t, addr, cfg.Topics.Clickstream.Name)); got != 500 {
		t.Errorf("clickstream topic holds %d events, want 500", got)
	}
	want := distinctEvents(t, addr, cfg)
	// Committed means indexed: every item is in the collection the alias
	// names.
	stop()
	store, err := localstore.Open(cfg.VectorStore.DataDir, localstore.WithConfig(cfg.VectorStore.Local))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	coll, err := store.ResolveAlias(ctx, catalog.ItemsAlias)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := store.Count(ctx, coll); err != nil || n != 50 {
		t.Fatalf("collection %s holds %d items (%v), want 50", coll, n, err)
	}

	// And in the local analytics store, through the SQL views analysts use:
	// every distinct event (the generator's duplicates dropped) and item.
	db, err := duckdb.Open(ctx, cfg.Analytics.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Query(ctx, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM items)")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Rows); got != fmt.Sprintf("[[%d 50]]", len(want)) {
		t.Errorf("analytics holds [[events items]] = %s, want [[%d 50]]", got, len(want))
	}
}

// TestMigrate: `streamrec migrate` applies the embedded schema once; a
// second run has nothing to do.
func TestMigrate(t *testing.T) {
	cfg := config.Default()
	cfg.ClickHouse = chtest.NewDatabase(t)
	log := slog.New(slog.DiscardHandler)
	applied, err := Migrate(context.Background(), cfg, log)
	if err != nil || len(applied) == 0 || applied[0] != "0001_init" {
		t.Fatalf("first migrate: %v, %v", applied, err)
	}
	again, err := Migrate(context.Background(), cfg, log)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate: %v, %v", again, err)
	}
}

// distinctEvents returns the distinct event ids of the clickstream topic.
func distinctEvents(t *testing.T, addr string, cfg config.Config) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, r := range readAll(t, addr, cfg.Topics.Clickstream.Name) {
		var ev schemas.ClickEvent
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		ids[ev.EventID] = true
	}
	return ids
}

// TestRunIntoClickHouse: with analytics.backend clickhouse, run migrates a
// fresh database and every distinct event and every item reaches it before
// the offsets are committed.
func TestRunIntoClickHouse(t *testing.T) {
	ch := chtest.NewDatabase(t)
	cfg, addr, _ := start(t, false,
		"STREAMREC_ANALYTICS_BACKEND=clickhouse",
		"STREAMREC_CLICKHOUSE_ADDR="+ch.Addr,
		"STREAMREC_CLICKHOUSE_DATABASE="+ch.Database)
	cfg.Produce.Items = 30
	cfg.Produce.Events = 400
	cfg.Produce.Rate = 50_000
	if _, err := Produce(context.Background(), cfg, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, addr, cfg.Clickstream.Group, cfg.Topics.Clickstream.Name)
	waitCommitted(t, addr, cfg.Catalog.Group, cfg.Topics.Catalog.Name)
	want := distinctEvents(t, addr, cfg)

	ctx := context.Background()
	conn, err := clickhouse.Open(ctx, ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var events, items uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(item_id) FROM items").Scan(&items); err != nil {
		t.Fatal(err)
	}
	if int(events) != len(want) || items != 30 {
		t.Errorf("ClickHouse holds %d distinct events (want %d) and %d items (want 30)", events, len(want), items)
	}
}

func TestSpaceOut(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := []schemas.ClickEvent{
		{UserID: "a", Timestamp: t0}, {UserID: "b", Timestamp: t0}, {UserID: "a", Timestamp: t0},
		{UserID: "a", Timestamp: t0.Add(50 * time.Millisecond)}, {UserID: "b", Timestamp: t0.Add(time.Second)},
	}
	spaceOut(evs, 100*time.Millisecond)
	want := []time.Time{t0.Add(-150 * time.Millisecond), t0, t0.Add(-50 * time.Millisecond), t0.Add(50 * time.Millisecond), t0.Add(time.Second)}
	for i, ev := range evs {
		if !ev.Timestamp.Equal(want[i]) {
			t.Errorf("event %d (%s) at %s, want %s", i, ev.UserID, ev.Timestamp.Sub(t0), want[i].Sub(t0))
		}
	}
}

package chaos

import (
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/schemas"
)

const clickstreamGroup = "streamrec-clickstream"

// TestKillRunDuringIngest: kill -9 of `streamrec run` (embedded broker and
// every consumer in one process) while an acks=all producer sends; restart
// it on the same data. Every acknowledged id must be in the topic and in
// the events view afterwards.
func TestKillRunDuringIngest(t *testing.T) {
	enabled(t)
	for _, syncWrites := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync_writes=%v", syncWrites), func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			brokers := fmt.Sprintf("127.0.0.1:%d", port)
			analytics := filepath.Join(dir, "analytics")
			run := startProc(t, "run", []string{
				"BROKER_PORT=" + strconv.Itoa(port), "BROKER_DATA_DIR=" + filepath.Join(dir, "kafka"),
				"BROKER_SYNC_WRITES=" + strconv.FormatBool(syncWrites),
				"EMBED_ENABLED=false", "ANALYTICS_BACKEND=local", "ANALYTICS_DIR=" + analytics,
				"CLICKSTREAM_QUALITY_RATE_LIMIT_EVENTS_PER_SECOND=0",
			}, "run")

			p := newProducer(t, brokers, fmt.Sprintf("run-%v", syncWrites))
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { p.produce(t, ctx, 2000) })
			// Three kills, each after 2,000 more acknowledged events.
			const kills = 3
			var ready time.Duration
			for range kills {
				waitAcked(t, p, len(p.ackedIDs())+2000)
				run.kill9()
				killed := time.Now()
				run.restart()
				run.waitReady(2 * time.Minute)
				ready = max(ready, time.Since(killed))
			}
			waitAcked(t, p, len(p.ackedIDs())+2000)
			cancel()
			wg.Wait()
			caught := waitCaughtUp(t, brokers, clickstreamGroup, schemas.TopicClickstream, 2*time.Minute)

			inTopic := topicIDs(t, brokers, schemas.TopicClickstream)
			run.stop() // flushes the analytics store
			inStore := sqlIDs(t, analytics)

			acked := p.ackedIDs()
			presentTopic, lostTopic, topicDups := compare(acked, inTopic)
			present, lost, dups := compare(acked, inStore)
			record(t, row{
				experiment: fmt.Sprintf("kill -9 of `run` (embedded broker, sync_writes %v) during ingest at 2,000 events/s, restart; 3 times", syncWrites),
				acked:      len(acked), inTopic: presentTopic, inStore: present, lost: lost, duplicated: dups, topicDups: topicDups,
				recovery: fmt.Sprintf("ready again at most %.1f s after a kill; caught up %.1f s after the producer stopped", ready.Seconds(), caught.Seconds()),
				notes:    fmt.Sprintf("%d sent, %d producer errors", p.sent, p.fails),
			})
			if lostTopic > 0 || lost > 0 {
				t.Errorf("lost acknowledged events: %d not in the topic, %d not in the events view", lostTopic, lost)
			}
			if dups > 0 {
				t.Errorf("%d duplicates in the events view", dups)
			}
		})
	}
}

// TestKillConsumerFailover: two clickstream processes split the group; one
// is killed with kill -9 and restarted at once. Measured: how long until
// every partition moves again, with dynamic membership (waits for the dead
// member's session, kafka.session_timeout 45 s) and static membership
// (kafka.instance_id: the restarted process takes its partitions back).
func TestKillConsumerFailover(t *testing.T) {
	enabled(t)
	for _, static := range []bool{false, true} {

		name := "dynamic membership"
		if static {
			name = "static membership"
		}
		t.Run(name, func(t *testing.T) {
			if !static && os.Getenv(envQuick) == "1" {
				t.Skipf("%s=1: not waiting out a 45 s session", envQuick)
			}
			ch := startClickHouse(t)
			brokers := startBroker(t)
			consumer := func(id string) *proc {
				s := []string{"KAFKA_BROKERS=" + brokers, "EMBED_ENABLED=false", "ANALYTICS_BACKEND=clickhouse",
					"CLICKHOUSE_ADDR=" + ch.addr, "CLICKSTREAM_QUALITY_RATE_LIMIT_EVENTS_PER_SECOND=0"}
				if static {
					s = append(s, "KAFKA_INSTANCE_ID=chaos-"+id)
				}
				return startProc(t, "clickstream-"+id, s, "clickstream")
			}
			a := consumer("a")
			b := consumer("b")

			p := newProducer(t, brokers, "failover-"+name)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { p.produce(t, ctx, 1000) })
			defer func() { cancel(); wg.Wait() }()
			adm := admin(t, brokers)
			// Warm: both members own partitions and every partition commits.
			if !poll(time.Minute, func() bool {
				com, err := committed(context.Background(), adm, clickstreamGroup, schemas.TopicClickstream)
				return err == nil && len(com) == 6 && allPositive(com)
			}) {
				t.Fatal("the group did not commit all 6 partitions within a minute")
			}
			before, err := committed(context.Background(), adm, clickstreamGroup, schemas.TopicClickstream)
			if err != nil {
				t.Fatal(err)
			}
			a.kill9()
			killed := time.Now()
			a.restart()
			// Recovery: every partition's committed offset moved past where
			// it stood at the kill.
			var recovered time.Duration
			moved := map[int32]bool{}
			if !poll(3*time.Minute, func() bool {
				com, err := committed(context.Background(), adm, clickstreamGroup, schemas.TopicClickstream)
				if err != nil {
					return false
				}
				for part, off := range com {
					if off > before[part] {
						moved[part] = true
					}
				}
				recovered = time.Since(killed)
				return len(moved) == len(before)
			}) {
				t.Fatalf("partitions %v never moved again after the kill; logs:\n%s\n%s", moved, tail(a.log), tail(b.log))
			}
			waitAcked(t, p, len(p.ackedIDs())+2000)
			cancel()
			wg.Wait()
			waitCaughtUp(t, brokers, clickstreamGroup, schemas.TopicClickstream, 2*time.Minute)
			acked := p.ackedIDs()
			inTopic := topicIDs(t, brokers, schemas.TopicClickstream)
			presentTopic, _, topicDups := compare(acked, inTopic)
			inStore, raw := clickhouseIDs(t, ch.addr)
			present, lost, dups := compare(acked, inStore)
			record(t, row{
				experiment: "kill -9 of one of two clickstream consumers (split deployment, ClickHouse), restart, " + name,
				acked:      len(acked), inTopic: presentTopic, inStore: present, lost: lost, duplicated: dups, topicDups: topicDups,
				recovery: fmt.Sprintf("every partition moving again %.1f s after the kill", recovered.Seconds()),
				notes:    fmt.Sprintf("kafka.session_timeout 45 s; %d rows in events before FINAL; %d producer errors", raw, p.fails),
			})
			if lost > 0 || dups > 0 {
				t.Errorf("%d lost, %d duplicated in events FINAL", lost, dups)
			}
			if static && recovered > 10*time.Second {
				t.Errorf("static membership: partitions back after %s, want < 10s", recovered)
			}
		})
	}
}

// TestClickHouseOutage: ClickHouse is stopped, then frozen (SIGSTOP), each
// for STREAMREC_CHAOS_OUTAGE, while events flow. The consumer must say it is
// not ready with the reason, keep its memory bounded, lose and duplicate
// nothing, and catch up afterwards.
func TestClickHouseOutage(t *testing.T) {
	enabled(t)
	down := outage(t)
	ch := startClickHouse(t)
	brokers := startBroker(t)
	c := startProc(t, "clickstream", []string{"KAFKA_BROKERS=" + brokers, "EMBED_ENABLED=false", "ANALYTICS_BACKEND=clickhouse",
		"CLICKHOUSE_ADDR=" + ch.addr, "CLICKSTREAM_QUALITY_RATE_LIMIT_EVENTS_PER_SECOND=0"}, "clickstream")

	p := newProducer(t, brokers, "outage")
	ctx, cancel := context.WithCancel(context.Background())
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.produce(t, ctx, 1000) })
	defer func() { cancel(); stopSampling(); wg.Wait() }()

	var maxRSS int64
	var rssMu sync.Mutex
	wg.Go(func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			rssMu.Lock()
			maxRSS = max(maxRSS, c.rss())
			rssMu.Unlock()
			select {
			case <-sampleCtx.Done():
				return
			case <-tk.C:
			}
		}
	})
	waitAcked(t, p, 3000)

	faults := []struct {
		name          string
		inject, clear func()
	}{
		{"stopped", func() { ch.script("stop") }, func() { ch.script("restart") }},
		{"frozen (SIGSTOP)", func() { ch.signal(syscall.SIGSTOP) }, func() { ch.signal(syscall.SIGCONT) }},
	}
	var notes []string
	for _, f := range faults {
		f.inject()
		start := time.Now()
		// Not ready, with the reason, within the probe interval and timeout.
		var body string
		noticed := poll(10*time.Second, func() bool {
			var code int
			code, body = c.readyz()
			return code == http.StatusServiceUnavailable && strings.Contains(body, "analytics.clickhouse: down")
		})
		if !noticed {
			t.Errorf("ClickHouse %s: /readyz still %q", f.name, body)
		}
		notReadyAfter := time.Since(start)
		// Not ready throughout the outage.
		tk := time.NewTicker(500 * time.Millisecond)
		for time.Since(start) < down {
			if code, b := c.readyz(); code == http.StatusOK {
				t.Errorf("ClickHouse %s: /readyz 200 during the outage: %q", f.name, b)
				break
			}
			<-tk.C
		}
		tk.Stop()
		f.clear()
		cleared := time.Now()
		c.waitReady(2 * time.Minute)
		ready := time.Since(cleared)
		caught := waitCaughtUp(t, brokers, clickstreamGroup, schemas.TopicClickstream, 2*time.Minute)
		notes = append(notes, fmt.Sprintf("%s %s: /readyz 503 after %.1f s, ready %.1f s and caught up %.1f s after it ended",
			f.name, down, notReadyAfter.Seconds(), ready.Seconds(), caught.Seconds()))
		t.Log(notes[len(notes)-1], "; readyz said:", strings.TrimSpace(body))
	}
	cancel()
	stopSampling()
	wg.Wait()
	waitCaughtUp(t, brokers, clickstreamGroup, schemas.TopicClickstream, 2*time.Minute)
	acked := p.ackedIDs()
	presentTopic, _, topicDups := compare(acked, topicIDs(t, brokers, schemas.TopicClickstream))
	inStore, raw := clickhouseIDs(t, ch.addr)
	present, lost, dups := compare(acked, inStore)
	rssMu.Lock()
	peak := maxRSS
	rssMu.Unlock()
	record(t, row{
		experiment: fmt.Sprintf("ClickHouse stopped %s, then frozen %s, mid-stream (1,000 events/s)", down, down),
		acked:      len(acked), inTopic: presentTopic, inStore: present, lost: lost, duplicated: dups, topicDups: topicDups,
		recovery: strings.Join(notes, "; "),
		notes:    fmt.Sprintf("consumer peak RSS %d MiB; %d rows in events before FINAL", peak>>20, raw),
	})
	if lost > 0 || dups > 0 {
		t.Errorf("%d lost, %d duplicated in events FINAL", lost, dups)
	}
	if peak == 0 {
		t.Error("the consumer's memory was never measured (/proc unreadable)")
	}
	if peak > 1<<30 {
		t.Errorf("consumer peak RSS %d MiB, want < 1 GiB (bounded buffers)", peak>>20)
	}
}

// startBroker runs `streamrec broker` (the embedded broker as a process of
// its own) and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	startProc(t, "broker", []string{"BROKER_PORT=" + strconv.Itoa(port), "BROKER_DATA_DIR=" + filepath.Join(t.TempDir(), "kafka")}, "broker")
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// waitAcked waits until the producer has n acknowledged events.
func waitAcked(t *testing.T, p *producer, n int) {
	t.Helper()
	if !poll(2*time.Minute, func() bool { return len(p.ackedIDs()) >= n }) {
		t.Fatalf("only %d of %d events acknowledged within 2 minutes", len(p.ackedIDs()), n)
	}
}

func allPositive(m map[int32]int64) bool {
	for _, v := range m {
		if v <= 0 {
			return false
		}
	}
	return true
}

// sqlIDs counts the event ids of the local store's events view, read with
// `streamrec sql` as an analyst would.
func sqlIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	cmd := exec.Command(binary, "sql", "--dir", dir, "--format", "csv", "SELECT event_id, count() AS n FROM events GROUP BY event_id")
	cmd.Env = env()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("streamrec sql: %v", err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range recs[1:] {
		n, _ := strconv.Atoi(r[1])
		ids[r[0]] = n
	}
	return ids
}

// clickhouseIDs counts the event ids of events FINAL (the deduplicated
// view analysts query).
func clickhouseIDs(t *testing.T, addr string) (ids map[string]int, raw uint64) {
	t.Helper()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := clickhouse.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Redelivered rows collapse in FINAL (and in merges): raw counts them
	// while they have not been merged yet.
	if err := conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT event_id, count() FROM events FINAL GROUP BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids = map[string]int{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		ids[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, raw
}

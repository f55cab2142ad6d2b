package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline/kafka"
	"github.com/streamrec/streamrec/pipeline/kafka/kafkatest"
	"github.com/streamrec/streamrec/schemas"
)

// Environment variables of the suite.
const (
	envEnable = "STREAMREC_CHAOS"
	envOutage = "STREAMREC_CHAOS_OUTAGE"
	envReport = "STREAMREC_CHAOS_REPORT"
	// envQuick skips the dynamic-membership failover, which waits out a
	// 45 s session (CI runs the quick suite).
	envQuick = "STREAMREC_CHAOS_QUICK"
)

// binary is the streamrec binary TestMain builds.
var binary string

// repoRoot is the module root (scripts/ lives there).
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

func TestMain(m *testing.M) {
	if os.Getenv(envEnable) != "1" {
		os.Exit(m.Run()) // every test skips
	}
	dir, err := os.MkdirTemp("", "streamrec-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "streamrec")
	build := exec.Command("go", "build", "-o", binary, "./cmd/streamrec")
	build.Dir, build.Stdout, build.Stderr = repoRoot, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: report:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func enabled(t *testing.T) {
	t.Helper()
	if os.Getenv(envEnable) != "1" {
		t.Skipf("fault injection runs with %s=1 (make chaos)", envEnable)
	}
}

// outage is how long ClickHouse stays stopped or frozen.
func outage(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv(envOutage)
	if v == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q is not a positive duration", envOutage, v)
	}
	return d
}

// row is one line of the results table.
type row struct {
	experiment string
	acked      int // ids the broker acknowledged to the producer
	inTopic    int // of them, present in the topic
	inStore    int // of them, present in the analytics store
	lost       int // acknowledged, absent from the store
	duplicated int // copies beyond one in the store's deduplicated view
	topicDups  int // copies beyond one in the raw topic
	recovery   string
	notes      string
}

var report struct {
	mu   sync.Mutex
	rows []row
}

func record(t *testing.T, r row) {
	t.Helper()
	t.Logf("%s: acknowledged %d, in topic %d, in store %d, lost %d, duplicated %d (raw topic %d), recovery %s; %s",
		r.experiment, r.acked, r.inTopic, r.inStore, r.lost, r.duplicated, r.topicDups, r.recovery, r.notes)
	report.mu.Lock()
	defer report.mu.Unlock()
	report.rows = append(report.rows, r)
}

func writeReport() error {
	report.mu.Lock()
	defer report.mu.Unlock()
	if len(report.rows) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("| experiment | acknowledged | in topic | in store | lost | duplicated (store) | duplicated (raw topic) | recovery | notes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range report.rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n",
			r.experiment, r.acked, r.inTopic, r.inStore, r.lost, r.duplicated, r.topicDups, r.recovery, r.notes)
	}
	fmt.Fprint(os.Stderr, "\n", b.String())
	if path := os.Getenv(envReport); path != "" {
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}
	return nil
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a streamrec process.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	env     []string
	metrics string // host:port of /metrics, /healthz, /readyz
	log     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// env is the environment of a streamrec process: this one's without
// STREAMREC_* variables, plus settings ("KEY=value", KEY without the
// STREAMREC_ prefix).
func env(settings ...string) []string {
	out := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "STREAMREC_") })
	for _, s := range settings {
		out = append(out, "STREAMREC_"+s)
	}
	return out
}

// startProc starts the binary with args and settings and a metrics
// listener of its own, and waits until it is ready (/readyz answers 200).
func startProc(t *testing.T, name string, settings []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, metrics: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		log: filepath.Join(t.TempDir(), name+".log")}
	p.env = env(append([]string{"METRICS_ADDR=" + p.metrics, "LOG_FORMAT=text", "REPORT_INTERVAL=1m"}, settings...)...)
	p.start()
	t.Cleanup(func() { p.kill9() })
	p.waitReady(60 * time.Second)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(binary, p.args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = repoRoot, p.env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// kill9 kills the process with SIGKILL (no shutdown at all) and waits.
func (p *proc) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop asks the process to stop (SIGTERM: drain, commit, flush) and waits.
func (p *proc) stop() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		p.t.Errorf("%s did not stop within 60s after SIGTERM; killing it (log %s)", p.name, p.log)
		p.kill9()
	}
}

// restart starts the process again with the same arguments and
// environment (the same data, ports and instance id).
func (p *proc) restart() { p.t.Helper(); p.start() }

// readyz returns /readyz's status code and body (0 when unreachable).
func (p *proc) readyz() (int, string) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + p.metrics + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// waitReady polls /readyz until it answers 200.
func (p *proc) waitReady(timeout time.Duration) {
	p.t.Helper()
	var code int
	var body string
	if !poll(timeout, func() bool { code, body = p.readyz(); return code == http.StatusOK }) {
		p.t.Fatalf("%s not ready after %s: %d %q (log %s:\n%s)", p.name, timeout, code, body, p.log, tail(p.log))
	}
}

// rss returns the process's resident memory in bytes.
func (p *proc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// poll checks cond every 50 ms until it holds (true) or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tk.C
	}
	return true
}

// producer sends clickstream events with acks=all (franz-go's default,
// idempotent) and records the id of each event the broker acknowledged.
type producer struct {
	cl    *kgo.Client
	run   string
	mu    sync.Mutex
	acked map[string]bool
	fails int
	sent  int
}

func newProducer(t *testing.T, brokers, run string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{cl: cl, run: run, acked: map[string]bool{}}
}

// produce sends rate events/s until ctx is done, then waits (up to two
// minutes) for every outstanding acknowledgement.
func (p *producer) produce(t *testing.T, ctx context.Context, rate int) {
	t.Helper()
	const tick = 20 * time.Millisecond
	per := max(1, rate*int(tick)/int(time.Second))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for i := 0; ctx.Err() == nil; {
		for range per {
			user := fmt.Sprintf("u-%d", i%997)
			id := fmt.Sprintf("chaos-%s-%d", p.run, i)
			ev := schemas.ClickEvent{EventID: id, Type: schemas.EventView, UserID: user,
				ItemID: fmt.Sprintf("item-%d", i%5000), Timestamp: time.Now().UTC()}
			v, _ := json.Marshal(ev)
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
			p.cl.Produce(ctx, &kgo.Record{Topic: schemas.TopicClickstream, Key: []byte(user), Value: v},
				func(_ *kgo.Record, err error) {
					p.mu.Lock()
					defer p.mu.Unlock()
					if err != nil {
						p.fails++
						return
					}
					p.acked[id] = true
				})
			i++
		}
		select {
		case <-ctx.Done():
		case <-tk.C:
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.cl.Flush(fctx); err != nil {
		t.Errorf("producer flush: %v", err)
	}
}

func (p *producer) ackedIDs() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// topicIDs reads the whole topic and counts each event id.
func topicIDs(t *testing.T, brokers, topic string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range kafkatest.Records(t, kafka.Config{Brokers: []string{brokers}}, topic) {
		var ev struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(r.Value, &ev) == nil {
			out[ev.EventID]++
		}
	}
	return out
}

func admin(t *testing.T, brokers string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// committed returns group's committed offsets on topic by partition.
func committed(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// waitCaughtUp waits until group has committed topic up to the end offsets
// it has now (records produced meanwhile need not be), and returns how long
// that took.
func waitCaughtUp(t *testing.T, brokers, group, topic string, timeout time.Duration) time.Duration {
	t.Helper()
	adm := admin(t, brokers)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var last string
	ok := poll(timeout, func() bool {
		com, err := committed(ctx, adm, group, topic)
		if err != nil {
			last = err.Error()
			return false
		}
		behind := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > com[o.Partition] {
				behind++
			}
		})
		last = fmt.Sprintf("committed %v", com)
		return behind == 0
	})
	if !ok {
		t.Fatalf("group %s did not catch up with %s within %s: %s", group, topic, timeout, last)
	}
	return time.Since(start)
}

// compare counts acknowledged ids against those found (id -> copies).
func compare(acked map[string]bool, found map[string]int) (present, lost, dups int) {
	for id := range acked {
		if n := found[id]; n > 0 {
			present++
		} else {
			lost++
		}
	}
	for _, n := range found {
		dups += max(0, n-1)
	}
	return present, lost, dups
}

// clickhouseServer is a ClickHouse server of this test's own (it is stopped,
// restarted and frozen).
type clickhouseServer struct {
	t    *testing.T
	dir  string
	addr string
}

func startClickHouse(t *testing.T) *clickhouseServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clickhouse")
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "clickhouse.sh"), "start", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("clickhouse.sh start: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("clickhouse.sh start: %v", err)
	}
	s := &clickhouseServer{t: t, dir: dir, addr: strings.TrimSpace(string(out))}
	t.Cleanup(func() {
		s.signal(syscall.SIGCONT)
		s.script("stop")
	})
	return s
}

func (s *clickhouseServer) script(cmd string) {
	s.t.Helper()
	if out, err := exec.Command(filepath.Join(repoRoot, "scripts", "clickhouse.sh"), cmd, s.dir).CombinedOutput(); err != nil {
		s.t.Fatalf("clickhouse.sh %s: %v: %s", cmd, err, out)
	}
}

func (s *clickhouseServer) signal(sig syscall.Signal) {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 0 {
		_ = syscall.Kill(pid, sig)
	}
}

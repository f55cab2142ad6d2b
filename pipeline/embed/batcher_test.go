package embed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeEncoder tokenizes one id per word and embeds a sequence as the
// 2-vector (first id, length), so a test can tell whose vector it got.
// Run blocks while gate is held.
type fakeEncoder struct {
	mu      sync.Mutex
	batches [][]int // lengths per run
	gate    chan struct{}
	entered chan struct{} // receives once per Run call, if not nil
	err     error
}

func (f *fakeEncoder) Tokenize(dst []int32, kind pipeline.TextKind, text string) []int32 {
	dst = append(dst, int32(kind))
	for _, w := range strings.Fields(text) {
		var h int32
		for _, r := range w {
			h = h*31 + r
		}
		dst = append(dst, h)
	}
	return dst
}

func (f *fakeEncoder) Run(_ context.Context, batch [][]int32) ([][]float32, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	lens := make([]int, len(batch))
	for i, s := range batch {
		lens[i] = len(s)
	}
	f.batches = append(f.batches, lens)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([][]float32, len(batch))
	for i, s := range batch {
		out[i] = []float32{float32(s[len(s)-1]), float32(len(s))}
	}
	return out, nil
}

func (f *fakeEncoder) Dim() int             { return 2 }
func (f *fakeEncoder) ModelVersion() string { return "fake-1" }

func (f *fakeEncoder) runs() [][]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// want is the vector the fake gives text.
func (f *fakeEncoder) want(text string) []float32 {
	ids := f.Tokenize(nil, pipeline.Passage, text)
	return []float32{float32(ids[len(ids)-1]), float32(len(ids))}
}

func startBatcher(t *testing.T, enc Encoder, pol Policy) *Batcher {
	t.Helper()
	b, err := New(enc, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return b
}

func TestConcurrentCallersShareBatches(t *testing.T) {
	enc := &fakeEncoder{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	pol := DefaultPolicy()
	pol.MaxWait = time.Millisecond
	b := startBatcher(t, enc, pol)

	// The first caller's batch holds the model; meanwhile 63 more queue up
	// and must leave in one batch.
	const callers = 64
	texts := make([]string, callers)
	for i := range texts {
		texts[i] = fmt.Sprintf("item %d %s", i, strings.Repeat("w ", i%7))
	}
	var wg sync.WaitGroup
	errs := make([]error, callers)
	got := make([][]float32, callers)
	call := func(i int) {
		defer wg.Done()
		v, err := b.Embed(context.Background(), pipeline.Passage, []string{texts[i]})
		errs[i] = err
		if err == nil {
			got[i] = v[0]
		}
	}
	wg.Add(1)
	go call(0)
	<-enc.entered // the model is busy with caller 0
	wg.Add(callers - 1)
	for i := 1; i < callers; i++ {
		go call(i)
	}
	// Wait until the collector holds all 63, then free the model.
	eventually(t, func() bool { return len(b.queue) == 0 && testutil.ToFloat64(b.metrics.queueDepth) == callers-1 })
	close(enc.gate)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !slices.Equal(got[i], enc.want(texts[i])) {
			t.Fatalf("caller %d got %v, want %v (results crossed between callers)", i, got[i], enc.want(texts[i]))
		}
	}
	total := 0
	runs := enc.runs()
	for _, r := range runs[1:] {
		total += len(r)
	}
	if total != callers-1 {
		t.Fatalf("runs after the first hold %d texts, want %d: %v", total, callers-1, runs)
	}
	// Sorted and bucketed: each run's lengths ascend, and there are few runs.
	for _, r := range runs {
		if !slices.IsSorted(r) {
			t.Errorf("run not sorted by length: %v", r)
		}
	}
	if len(runs) > 1+7 {
		t.Errorf("%d runs for 63 queued texts of 7 lengths: %v", len(runs), runs)
	}
}

func TestLoneTextWaitsAtMostMaxWait(t *testing.T) {
	enc := &fakeEncoder{}
	pol := DefaultPolicy()
	pol.MaxWait = 20 * time.Millisecond
	b := startBatcher(t, enc, pol)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := b.Embed(ctx, pipeline.Passage, []string{"alone"})
	if err != nil || !slices.Equal(v[0], enc.want("alone")) {
		t.Fatalf("Embed = %v, %v", v, err)
	}
}

func TestMultiTextCallKeepsOrder(t *testing.T) {
	enc := &fakeEncoder{}
	b := startBatcher(t, enc, DefaultPolicy())
	texts := []string{"a b c d e f", "x", "long text with many many words in it", "y z"}
	v, err := b.Embed(context.Background(), pipeline.Passage, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		if !slices.Equal(v[i], enc.want(text)) {
			t.Errorf("text %d: got %v, want %v", i, v[i], enc.want(text))
		}
	}
}

func TestErrorsReachEveryCaller(t *testing.T) {
	boom := errors.New("model crashed")
	enc := &fakeEncoder{err: boom}
	b := startBatcher(t, enc, DefaultPolicy())
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Embed(context.Background(), pipeline.Query, []string{"q"}); !errors.Is(err, boom) {
				t.Errorf("Embed error = %v, want %v", err, boom)
			}
		}()
	}
	wg.Wait()
}

func TestCallerDeadlineWhileModelBusy(t *testing.T) {
	enc := &fakeEncoder{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := startBatcher(t, enc, DefaultPolicy())
	first := make(chan error, 1)
	go func() {
		_, err := b.Embed(context.Background(), pipeline.Passage, []string{"first"})
		first <- err
	}()
	<-enc.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Embed(ctx, pipeline.Passage, []string{"late"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Embed under a passed deadline = %v, want DeadlineExceeded", err)
	}
	close(enc.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The expired text was dropped, not run.
	eventually(t, func() bool { return testutil.ToFloat64(b.metrics.dropped) == 1 })
	for _, r := range enc.runs() {
		if len(r) != 1 {
			t.Fatalf("runs %v: the expired text was run", enc.runs())
		}
	}
}

func TestStoppedBatcherRefuses(t *testing.T) {
	b, err := New(&fakeEncoder{}, DefaultPolicy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Embed(context.Background(), pipeline.Passage, []string{"x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Embed after stop = %v, want ErrClosed", err)
	}
}

func TestOversizeTextRunsAlone(t *testing.T) {
	enc := &fakeEncoder{}
	pol := DefaultPolicy()
	pol.MaxTokens = 10
	b := startBatcher(t, enc, pol)
	long := strings.Repeat("w ", 30)
	v, err := b.Embed(context.Background(), pipeline.Passage, []string{"a", long, "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v[1], enc.want(long)) {
		t.Fatalf("long text vector %v", v[1])
	}
	for _, r := range enc.runs() {
		if slices.Contains(r, 31) && len(r) != 1 {
			t.Fatalf("the oversize text shared a run: %v", enc.runs())
		}
	}
}

func TestBuckets(t *testing.T) {
	cases := []struct {
		name    string
		lens    []int
		padding float64
		want    [][2]int
	}{
		{"empty", nil, 0.2, nil},
		{"one", []int{7}, 0.2, [][2]int{{0, 1}}},
		{"equal lengths stay together", []int{5, 5, 5, 5}, 0.2, [][2]int{{0, 4}}},
		{"a long tail is cut off", []int{4, 4, 5, 5, 40}, 0.2, [][2]int{{0, 4}, {4, 5}}},
		{"bucketing off", []int{4, 4, 5, 5, 40}, 1, [][2]int{{0, 5}}},
		{"three groups", []int{2, 2, 10, 10, 11, 50, 52}, 0.25, [][2]int{{0, 2}, {2, 5}, {5, 7}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Buckets(tc.lens, tc.padding)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("Buckets(%v, %v) = %v, want %v", tc.lens, tc.padding, got, tc.want)
			}
			for _, bk := range got {
				real, longest := 0, 0
				for _, n := range tc.lens[bk[0]:bk[1]] {
					real += n
					longest = max(longest, n)
				}
				if pad := 1 - float64(real)/float64((bk[1]-bk[0])*longest); bk[1]-bk[0] > 1 && pad > tc.padding {
					t.Errorf("bucket %v pads %.2f > %.2f", bk, pad, tc.padding)
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Policy)
		want string
	}{
		{"items", func(p *Policy) { p.MaxItems = 0 }, "embed.batch.max_items must be > 0"},
		{"tokens", func(p *Policy) { p.MaxTokens = -1 }, "embed.batch.max_tokens must be > 0"},
		{"queue", func(p *Policy) { p.QueueSize = 0 }, "embed.batch.queue_size must be > 0"},
		{"padding", func(p *Policy) { p.MaxPadding = 0 }, "embed.batch.max_padding must be in (0, 1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			tc.mod(&p)
			if err := p.Validate("embed.batch"); err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		<-tick.C
	}
}

package serving

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/consumers/cooccur"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/localstore"
	"github.com/streamrec/streamrec/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hashEmbedder embeds a text as the normalised sum of its words, each word
// hashed to a signed dimension: texts sharing words are similar. It is
// deterministic and ignores the text kind.
type hashEmbedder struct{ dim int }

func (e hashEmbedder) Embed(_ context.Context, _ pipeline.TextKind, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, e.dim)
		for _, w := range strings.FieldsFunc(strings.ToLower(t), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			h := fnv.New64a()
			h.Write([]byte(w))
			x := h.Sum64()
			sign := float32(1)
			if x>>63 == 1 {
				sign = -1
			}
			v[x%uint64(e.dim)] += sign
		}
		out[i] = normalise(v)
	}
	return out, nil
}

func (e hashEmbedder) Dim() int             { return e.dim }
func (e hashEmbedder) ModelVersion() string { return "hash-v1" }

func normalise(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return v
	}
	n = math.Sqrt(n)
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
	return v
}

// item is a catalog item of the fixture.
type item struct {
	id, title string
	cats      []string
	brand     string
	price     float64
	inStock   bool
}

func (it item) payload() pipeline.Payload {
	return pipeline.Payload{
		pipeline.PayloadTitle:    it.title,
		pipeline.PayloadCategory: it.cats,
		pipeline.PayloadBrand:    it.brand,
		pipeline.PayloadPrice:    it.price,
		pipeline.PayloadInStock:  it.inStock,
	}
}

// matches is the test's own reading of the filters, against the item's
// fields rather than its payload.
func (it item) matches(f schemas.Filters) bool {
	return (f.Category == "" || slices.Contains(it.cats, f.Category)) &&
		(f.Brand == "" || it.brand == f.Brand) &&
		(f.MinPrice == nil || it.price >= *f.MinPrice) &&
		(f.MaxPrice == nil || it.price <= *f.MaxPrice) &&
		(f.InStock == nil || it.inStock == *f.InStock)
}

var catalogItems = []item{
	{"p1", "Acme Phone X", []string{"electronics", "phones"}, "acme", 699, true},
	{"p2", "Acme Phone X Plus", []string{"electronics", "phones"}, "acme", 899, true},
	{"p3", "Acme Phone X Mini", []string{"electronics", "phones"}, "acme", 599, true},
	{"p4", "Zeta Phone Case", []string{"electronics", "accessories"}, "zeta", 19, true},
	{"p5", "Zeta Phone Charger", []string{"electronics", "accessories"}, "zeta", 25, false},
	{"l1", "Acme Laptop Pro", []string{"electronics", "laptops"}, "acme", 1299, true},
	{"l2", "Zeta Laptop Air", []string{"electronics", "laptops"}, "zeta", 999, true},
	{"c1", "Brew Coffee Grinder", []string{"kitchen", "coffee"}, "brew", 49, true},
	{"c2", "Brew Coffee Maker", []string{"kitchen", "coffee"}, "brew", 89, true},
	{"c3", "Brew Espresso Machine", []string{"kitchen", "coffee"}, "brew", 299, false},
	{"c4", "Roast Coffee Beans", []string{"kitchen", "coffee"}, "roast", 15, true},
	{"k1", "Steel Kitchen Knife", []string{"kitchen", "knives"}, "steel", 39, true},
}

func itemByID(id string) item {
	for _, it := range catalogItems {
		if it.id == id {
			return it
		}
	}
	return item{}
}

// itemText is what the fixture embeds for an item.
func itemText(it item) string {
	return it.title + ". " + it.brand + ". " + strings.Join(it.cats, " > ")
}

// profiles is an in-memory pipeline.Profiles; fn, when set, answers
// instead.
type profiles struct {
	m  map[string]pipeline.Profile
	fn func(ctx context.Context, userID string) (pipeline.Profile, bool, error)
}

func (p *profiles) Profile(ctx context.Context, userID string) (pipeline.Profile, bool, error) {
	if p.fn != nil {
		return p.fn(ctx, userID)
	}
	prof, ok := p.m[userID]
	return prof, ok, nil
}

// popularity is an in-memory pipeline.Popularity over a fixed ranking.
type popularity struct {
	ranking []pipeline.Scored
	cats    map[string][]string
}

func (p *popularity) Top(category string, k int) []pipeline.Scored {
	var out []pipeline.Scored
	for _, s := range p.ranking {
		if len(out) == k {
			break
		}
		if category == "" || slices.Contains(p.cats[s.ItemID], category) {
			out = append(out, s)
		}
	}
	return out
}

// recorder is a pipeline.Analytics keeping the recommendations rows; fail,
// when set, is returned (once) instead of storing.
type recorder struct {
	mu    sync.Mutex
	rows  []pipeline.ServedRecommendation
	fail  error
	calls int
}

func (r *recorder) InsertEvents(context.Context, []schemas.ClickEvent) error   { return nil }
func (r *recorder) InsertItems(context.Context, []schemas.CatalogChange) error { return nil }
func (r *recorder) Close() error                                               { return nil }
func (r *recorder) InsertRecommendations(_ context.Context, rows []pipeline.ServedRecommendation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if err := r.fail; err != nil {
		r.fail = nil
		return err
	}
	r.rows = append(r.rows, rows...)
	return nil
}

func (r *recorder) byRequest() map[string]pipeline.ServedRecommendation {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]pipeline.ServedRecommendation{}
	for _, row := range r.rows {
		m[row.RequestID] = row
	}
	return m
}

const (
	replyTopic = "reco.replies.test"
	collName   = "items_hash-v1"
)

type fixture struct {
	srv      *Server
	store    *localstore.Store
	emb      hashEmbedder
	vecs     map[string][]float32
	profiles *profiles
	pop      *popularity
	co       *cooccur.Tracker
	an       *recorder
	reg      *prometheus.Registry
	brokers  []string
	replies  *kgo.Client
}

// newFixture builds a server over a localstore holding catalogItems behind
// the items alias, an in-process Kafka cluster with the reply topic, and
// in-test profiles, popularity and analytics. cfg, if not nil, adjusts the
// default config.
func newFixture(t *testing.T, cfg func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{emb: hashEmbedder{dim: 256}, vecs: map[string][]float32{}, an: &recorder{}, reg: prometheus.NewRegistry()}

	store, err := localstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store = store
	if err := store.EnsureCollection(ctx, collName, f.emb.dim); err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(catalogItems))
	for i, it := range catalogItems {
		texts[i] = itemText(it)
	}
	vecs, _ := f.emb.Embed(ctx, pipeline.Passage, texts)
	points := make([]pipeline.Point, len(catalogItems))
	for i, it := range catalogItems {
		points[i] = pipeline.Point{ID: it.id, Vector: vecs[i], Payload: it.payload()}
		f.vecs[it.id] = vecs[i]
	}
	if err := store.Upsert(ctx, collName, points); err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias(ctx, "items", collName); err != nil {
		t.Fatal(err)
	}

	f.profiles = &profiles{m: map[string]pipeline.Profile{}}
	// Popularity ranks a deleted item ("gone") among the catalog's.
	f.pop = &popularity{cats: map[string][]string{"gone": {"kitchen", "coffee"}}}
	for i, id := range []string{"c2", "gone", "p4", "c1", "p1", "l2", "c4", "k1", "p2", "c3", "p5", "l1", "p3"} {
		f.pop.ranking = append(f.pop.ranking, pipeline.Scored{ItemID: id, Score: float64(100 - i)})
		if id != "gone" {
			f.pop.cats[id] = itemByID(id).cats
		}
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, replyTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	f.brokers = cluster.ListenAddrs()
	f.replies, err = kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ProducerLinger(0), kgo.UnknownTopicRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.replies.Close)

	// Empty until a test observes: users it has not seen get no
	// co-occurrence candidates.
	if f.co, err = cooccur.NewTracker(cooccur.DefaultConfig(), nil); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if cfg != nil {
		cfg(&c)
	}
	f.srv, err = New(Deps{
		Store: store, ItemsAlias: "items", Profiles: f.profiles, Popularity: f.pop, CoOccurrence: f.co,
		Embedder: f.emb, Analytics: f.an, Replies: f.replies,
	}, c, nil, f.reg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// profile builds a user's profile from touches (newest first) and
// purchases, its vector the mean of the touched items' vectors.
func (f *fixture) profile(user string, recent []pipeline.Touch, purchased ...string) pipeline.Profile {
	v := make([]float32, f.emb.dim)
	for _, t := range recent {
		for i, x := range f.vecs[t.ItemID] {
			v[i] += x
		}
	}
	for _, id := range purchased {
		for i, x := range f.vecs[id] {
			v[i] += x
		}
	}
	p := pipeline.Profile{UserID: user, Vector: normalise(v), Recent: recent, Purchased: purchased, UpdatedAt: time.Now()}
	f.profiles.m[user] = p
	return p
}

// request is a reco.requests.v1 record of value (marshalled unless it is a
// string) with headers as key/value pairs.
func request(t *testing.T, offset int64, value any, headers ...string) pipeline.Record {
	t.Helper()
	raw, ok := value.(string)
	if !ok {
		b, err := json.Marshal(value)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	rec := pipeline.Record{Topic: schemas.TopicRecoRequests, Offset: offset, Value: []byte(raw), Timestamp: time.Now()}
	for i := 0; i+1 < len(headers); i += 2 {
		rec.Headers = append(rec.Headers, pipeline.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return rec
}

// gotReply is a reply read back from the reply topic.
type gotReply struct {
	reply       schemas.RecoReply
	correlation string
}

// readReplies reads the first n replies of topic, by correlation id.
func (f *fixture) readReplies(t *testing.T, topic string, n int) map[string]gotReply {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]gotReply{}
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d replies before the timeout", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			reply, err := schemas.DecodeReply(r.Value, schemas.DefaultLimits())
			if err != nil {
				t.Errorf("reply %s does not decode: %v", r.Value, err)
				return
			}
			var corr string
			for _, h := range r.Headers {
				if h.Key == schemas.HeaderCorrelationID {
					corr = string(h.Value)
				}
			}
			out[corr] = gotReply{reply: reply, correlation: corr}
		})
	}
	return out
}

// replyCount is the number of records in topic.
func (f *fixture) replyCount(t *testing.T, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(f.replies).ListEndOffsets(context.Background(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

func ids(items []schemas.ReplyItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ItemID
	}
	return out
}

func ptr[T any](v T) *T { return &v }

var errTransient = errors.New("analytics briefly down")

package synth

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/streamrec/streamrec/schemas"
)

// maxViews caps the views of one session.
const maxViews = 50

// Traffic generates the clickstream of shoppers browsing a Catalog: many
// sessions at once, interleaved, each a funnel of an optional search, views,
// clicks, add_to_carts and purchases. It is not safe for concurrent use.
//
// The content of the sessions follows Config.Seed; event and session ids come
// from crypto/rand, so that every run's ids are new.
type Traffic struct {
	cat      *Catalog
	cfg      Config
	r        *mrand.Rand
	popular  *mrand.Zipf   // over Catalog.byRank
	inCat    []*mrand.Zipf // over Catalog.byCat; nil for an empty category
	users    []user
	sessions []*session // active; nil or empty ones are replaced on use

	last    schemas.ClickEvent // the event Next returned last, for duplicates
	hasLast bool
}

// user is a shopper and the context it browses from.
type user struct{ id, locale, device string }

// session is one visit of a user: its steps still to emit.
type session struct {
	user  *user
	id    string
	steps []step
	last  time.Time
}

// step is one event of a session before it is stamped.
type step struct {
	typ   schemas.EventType
	item  int // -1 for a search
	query string
	qty   int
	page  string
}

// NewTraffic returns a Traffic over cat with cfg's users, sessions, funnel
// and popularity. cfg must be valid.
func NewTraffic(cat *Catalog, cfg Config) *Traffic {
	r := mrand.New(mrand.NewPCG(cfg.Seed, trafficStream))
	t := &Traffic{
		cat:      cat,
		cfg:      cfg,
		r:        r,
		popular:  mrand.NewZipf(r, cfg.ZipfS, 1, uint64(len(cat.Items)-1)),
		inCat:    make([]*mrand.Zipf, len(cat.byCat)),
		users:    make([]user, cfg.Users),
		sessions: make([]*session, cfg.Sessions),
	}
	for c, items := range cat.byCat {
		if len(items) > 0 {
			t.inCat[c] = mrand.NewZipf(r, cfg.ZipfS, 1, uint64(len(items)-1))
		}
	}
	for i := range t.users {
		t.users[i] = user{id: UserID(i), locale: t.weighted(locales), device: t.weighted(devices)}
	}
	return t
}

// Next returns the next event, stamped at now or, to keep a session's
// timestamps increasing, a millisecond after its previous event. duplicate
// is true when the event repeats the previous one, event_id included.
func (t *Traffic) Next(now time.Time) (ev schemas.ClickEvent, duplicate bool) {
	if t.hasLast && t.r.Float64() < t.cfg.DuplicateFraction {
		t.hasLast = false // never three in a row
		return t.last, true
	}
	i := t.r.IntN(len(t.sessions))
	s := t.sessions[i]
	if s == nil || len(s.steps) == 0 {
		s = t.newSession()
		t.sessions[i] = s
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	if !now.After(s.last) {
		now = s.last.Add(time.Millisecond)
	}
	s.last = now
	ev = schemas.ClickEvent{
		EventID:   newEventID(),
		Type:      st.typ,
		UserID:    s.user.id,
		SessionID: s.id,
		Query:     st.query,
		Timestamp: now,
		Context:   schemas.EventContext{Device: s.user.device, Locale: s.user.locale, Page: st.page},
	}
	if st.item >= 0 {
		ev.ItemID = t.cat.Items[st.item].ItemID
	}
	if st.qty > 0 {
		ev.Price, ev.Quantity = t.cat.Items[st.item].Price, st.qty
	}
	t.last, t.hasLast = ev, true
	return ev, false
}

// newSession plans a session: an optional search that focuses the views on
// the searched item's category, then views of items drawn by popularity,
// each followed down the funnel with the configured probabilities.
func (t *Traffic) newSession() *session {
	s := &session{user: &t.users[t.r.IntN(len(t.users))], id: "sess-" + randomHex(8)}
	focus, page := -1, t.weighted(browsePages)
	if t.r.Float64() < t.cfg.SearchFraction {
		target := t.popularItem()
		focus, page = t.cat.words[target].cat, "search"
		s.steps = append(s.steps, step{typ: schemas.EventSearch, item: -1, query: t.query(target), page: page})
	} else if page == "category" {
		focus = t.cat.words[t.popularItem()].cat
	}
	views := min(maxViews, 1+int(t.r.ExpFloat64()*(t.cfg.MeanViews-1)))
	var cart []step
	for range views {
		item := t.popularItem()
		if focus >= 0 && t.r.Float64() < 0.7 {
			item = t.cat.byCat[focus][t.inCat[focus].Uint64()]
		}
		s.steps = append(s.steps, step{typ: schemas.EventView, item: item, page: page})
		if t.r.Float64() >= t.cfg.Funnel.ViewToClick {
			continue
		}
		s.steps = append(s.steps, step{typ: schemas.EventClick, item: item, page: page})
		if !t.cat.Items[item].InStock || t.r.Float64() >= t.cfg.Funnel.ClickToCart {
			continue
		}
		add := step{typ: schemas.EventAddToCart, item: item, qty: 1 + min(t.r.IntN(8), t.r.IntN(8))/3, page: "product"}
		s.steps = append(s.steps, add)
		cart = append(cart, add)
	}
	for _, add := range cart {
		if t.r.Float64() < t.cfg.Funnel.CartToPurchase {
			s.steps = append(s.steps, step{typ: schemas.EventPurchase, item: add.item, qty: add.qty, page: "checkout"})
		}
	}
	return s
}

// popularItem draws an item by global popularity.
func (t *Traffic) popularItem() int { return t.cat.byRank[t.popular.Uint64()] }

// query builds what a shopper types to find item i: a few of its words,
// usually lower case, sometimes with a typo.
func (t *Traffic) query(i int) string {
	w := t.cat.words[i]
	sep := " "
	if w.zh {
		sep = ""
	}
	var q string
	switch t.r.IntN(4) {
	case 0:
		q = w.noun
	case 1:
		q = w.adj + sep + w.noun
	case 2:
		q = w.brand + " " + w.noun
	default:
		q = strings.TrimSpace(w.color + sep + w.noun)
	}
	switch n := t.r.IntN(10); {
	case n < 7:
		q = strings.ToLower(q)
	case n < 9: // as written: Title Case
	default:
		q = t.mixedCase(q)
	}
	if t.r.Float64() < t.cfg.TypoFraction {
		q = t.typo(q)
	}
	return q
}

// mixedCase upper-cases a random third of q's letters.
func (t *Traffic) mixedCase(q string) string {
	return strings.Map(func(c rune) rune {
		if t.r.IntN(3) == 0 {
			return unicode.ToUpper(c)
		}
		return unicode.ToLower(c)
	}, q)
}

// typo swaps, drops or doubles one letter of q (q is kept if too short).
func (t *Traffic) typo(q string) string {
	rs := []rune(q)
	if len(rs) < 4 {
		return q
	}
	i := 1 + t.r.IntN(len(rs)-2) // never the first or last letter
	switch t.r.IntN(3) {
	case 0:
		rs[i], rs[i+1] = rs[i+1], rs[i]
	case 1:
		rs = slices.Delete(rs, i, i+1)
	default:
		rs = slices.Insert(rs, i, rs[i])
	}
	return string(rs)
}

// weighted draws a value by weight.
func (t *Traffic) weighted(ws []weighted) string {
	var total float64
	for _, w := range ws {
		total += w.w
	}
	x := t.r.Float64() * total
	for _, w := range ws {
		if x -= w.w; x < 0 {
			return w.v
		}
	}
	return ws[len(ws)-1].v
}

// newEventID returns a random (version 4) UUID.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

package profiles

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// UsersAlias is the alias the serving path reads profiles through: it
// points at the users collection of the model the updater runs with.
const UsersAlias = "users"

// UsersCollection is the name of the users collection for a model version:
// "users_" plus the version made safe as catalog.Collection makes it, so
// users_<v> sits beside items_<v>.
func UsersCollection(version string) string {
	return "users_" + strings.TrimPrefix(catalog.Collection(version), "items_")
}

// Payload keys of a user's point.
const (
	// PayloadRecent ([]string) are the latest touches, newest first by
	// event time, each "type|item_id|unix_ms".
	PayloadRecent = "recent"
	// PayloadPurchased ([]string) are the items bought, most recently
	// bought first, each once.
	PayloadPurchased = "purchased"
	// PayloadUpdatedAt (int64, Unix ms) is the newest event time applied:
	// the reference time that PayloadMass and PayloadNorm are decayed to.
	PayloadUpdatedAt = pipeline.PayloadUpdatedAt
	// PayloadMass (float64) is the decayed sum of the weights of the events
	// whose item had a vector, at PayloadUpdatedAt.
	PayloadMass = "mass"
	// PayloadNorm (float64) is the length of the decayed weighted sum of
	// those item vectors at PayloadUpdatedAt. The point's unit vector times
	// PayloadNorm is that sum, so the next update continues it exactly; the
	// weighted mean is that sum over PayloadMass.
	PayloadNorm = "norm"
	// PayloadSrcPartition and PayloadSrcOffset (int64) are the clickstream
	// partition and the highest offset applied to this user: a later event
	// of that partition at or below it is a replay and is skipped.
	PayloadSrcPartition = "src_partition"
	PayloadSrcOffset    = "src_offset"
)

// state is a user's profile while an update works on it.
type state struct {
	id string
	// sum is the decayed weighted sum of unit item vectors at ref; nil
	// until an item with a vector is applied.
	sum  []float64
	mass float64
	ref  int64 // Unix ms; valid when hasRef
	// hasRef is false for a new user.
	hasRef    bool
	recent    []touch
	purchased []string
	part      int32
	off       int64
	hasSrc    bool
}

// touch is one entry of the recent list.
type touch struct {
	typ  schemas.EventType
	item string
	at   int64 // Unix ms
}

func (t touch) String() string {
	return string(t.typ) + "|" + t.item + "|" + strconv.FormatInt(t.at, 10)
}

// parseTouch reads "type|item_id|unix_ms"; the item id may itself contain
// '|'.
func parseTouch(s string) (touch, bool) {
	i, j := strings.IndexByte(s, '|'), strings.LastIndexByte(s, '|')
	if i < 0 || j <= i {
		return touch{}, false
	}
	ms, err := strconv.ParseInt(s[j+1:], 10, 64)
	if err != nil {
		return touch{}, false
	}
	return touch{typ: schemas.EventType(s[:i]), item: s[i+1 : j], at: ms}, true
}

// decodeState reads a stored point. Missing keys read as zero values; a
// vector of another length than dim (when dim > 0) is an error.
func decodeState(p pipeline.Point, dim int) (*state, error) {
	s := &state{id: p.ID}
	if ms, ok := p.Payload[PayloadUpdatedAt].(int64); ok {
		s.ref, s.hasRef = ms, true
	}
	s.mass, _ = p.Payload[PayloadMass].(float64)
	norm, _ := p.Payload[PayloadNorm].(float64)
	if norm > 0 {
		if dim > 0 && len(p.Vector) != dim {
			return nil, fmt.Errorf("user %q: stored vector has %d dimensions, want %d: %w", p.ID, len(p.Vector), dim, pipeline.ErrDimension)
		}
		// The store may have renormalised the vector; scale its direction.
		var ss float64
		for _, f := range p.Vector {
			ss += float64(f) * float64(f)
		}
		if ss > 0 {
			k := norm / math.Sqrt(ss)
			s.sum = make([]float64, len(p.Vector))
			for i, f := range p.Vector {
				s.sum[i] = float64(f) * k
			}
		}
	}
	if rs, ok := p.Payload[PayloadRecent].([]string); ok {
		for _, r := range rs {
			if t, ok := parseTouch(r); ok {
				s.recent = append(s.recent, t)
			}
		}
	}
	if ps, ok := p.Payload[PayloadPurchased].([]string); ok {
		s.purchased = slices.Clone(ps)
	}
	part, okP := p.Payload[PayloadSrcPartition].(int64)
	off, okO := p.Payload[PayloadSrcOffset].(int64)
	if okP && okO {
		s.part, s.off, s.hasSrc = int32(part), off, true
	}
	return s, nil
}

// norm returns the length of the weighted sum.
func (s *state) norm() float64 {
	var ss float64
	for _, f := range s.sum {
		ss += f * f
	}
	return math.Sqrt(ss)
}

// point encodes the state as a point of dim dimensions (a zero vector while
// no item had one).
func (s *state) point(dim int) pipeline.Point {
	vec := make([]float32, dim)
	n := s.norm()
	if n > 0 {
		for i, f := range s.sum {
			vec[i] = float32(f / n)
		}
	}
	recent := make([]string, len(s.recent))
	for i, t := range s.recent {
		recent[i] = t.String()
	}
	p := pipeline.Payload{
		PayloadRecent:    recent,
		PayloadPurchased: slices.Clone(s.purchased),
		PayloadUpdatedAt: s.ref,
		PayloadMass:      s.mass,
		PayloadNorm:      n,
	}
	if s.hasSrc {
		p[PayloadSrcPartition] = int64(s.part)
		p[PayloadSrcOffset] = s.off
	}
	return pipeline.Point{ID: s.id, Vector: vec, Payload: p}
}

// profile converts a stored point to the serving shape.
func profile(p pipeline.Point) (pipeline.Profile, error) {
	s, err := decodeState(p, 0)
	if err != nil {
		return pipeline.Profile{}, err
	}
	out := pipeline.Profile{UserID: p.ID, Purchased: s.purchased}
	if s.sum != nil {
		out.Vector = p.Vector
	}
	if len(s.recent) > 0 {
		out.Recent = make([]pipeline.Touch, len(s.recent))
		for i, t := range s.recent {
			out.Recent[i] = pipeline.Touch{ItemID: t.item, Type: t.typ, At: time.UnixMilli(t.at).UTC()}
		}
	}
	if s.hasRef {
		out.UpdatedAt = time.UnixMilli(s.ref).UTC()
	}
	return out, nil
}

var _ pipeline.Profiles = (*Reader)(nil)

// Reader reads profiles through UsersAlias. Safe for concurrent use.
type Reader struct {
	store pipeline.VectorStore
}

// NewReader returns a Reader of the profiles in store.
func NewReader(store pipeline.VectorStore) *Reader { return &Reader{store: store} }

// Profile returns the user's profile. A user without a point, and every
// user while the alias does not exist yet (no profile was ever written),
// is cold: false and a nil error.
func (r *Reader) Profile(ctx context.Context, userID string) (pipeline.Profile, bool, error) {
	pts, err := r.store.Get(ctx, UsersAlias, []string{userID})
	if errors.Is(err, pipeline.ErrNoCollection) {
		return pipeline.Profile{}, false, nil
	}
	if err != nil {
		return pipeline.Profile{}, false, fmt.Errorf("profiles: read user %q: %w", userID, err)
	}
	if len(pts) == 0 {
		return pipeline.Profile{}, false, nil
	}
	p, err := profile(pts[0])
	if err != nil {
		return pipeline.Profile{}, false, fmt.Errorf("profiles: read user %q: %w", userID, err)
	}
	return p, true, nil
}

package clickstream

import (
	"math/rand/v2"
	"testing"
)

// TestIDSet: the set agrees with a map on random hashes (0 and collisions
// of home slots included) up to its limit.
func TestIDSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, limit := range []int{1, 7, 1000} {
		s := newIDSet(limit)
		want := map[uint64]bool{}
		for !s.full() {
			h := r.Uint64() >> r.IntN(64) // many small values, 0 among them
			s.add(h)
			want[max(h, 1)] = true
		}
		if s.n != len(want) {
			t.Fatalf("limit %d: n=%d, want %d", limit, s.n, len(want))
		}
		for h := range want {
			if !s.has(h) {
				t.Fatalf("limit %d: %d missing", limit, h)
			}
		}
		for range 10000 {
			h := r.Uint64()
			if s.has(h) != want[max(h, 1)] {
				t.Fatalf("limit %d: has(%d) = %v", limit, h, s.has(h))
			}
		}
	}
}

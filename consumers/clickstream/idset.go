package clickstream

import "math/bits"

// idSet is a fixed-capacity set of 64-bit event-id hashes: open addressing
// with linear probing in one flat slice, 8 bytes a slot at a load of at most
// 3/4 (about 10.7 bytes an id). A Go map[uint64]struct{} costs 2-3 times
// that (BenchmarkDedupWindow). Zero marks an empty slot, so the hash 0 is
// stored as 1.
type idSet struct {
	slots []uint64
	n     int
	limit int
}

// newIDSet returns a set that holds up to limit hashes.
func newIDSet(limit int) *idSet {
	limit = max(limit, 1)
	return &idSet{slots: make([]uint64, limit+limit/3+1), limit: limit}
}

// full reports whether the set holds its limit.
func (s *idSet) full() bool { return s.n >= s.limit }

// home is h's first slot: Lemire's multiply-shift range reduction.
func (s *idSet) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(s.slots)))
	return int(hi)
}

// has reports whether h is in the set.
func (s *idSet) has(h uint64) bool {
	h = max(h, 1)
	for i := s.home(h); ; {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
}

// add inserts h; the caller checks full first.
func (s *idSet) add(h uint64) {
	h = max(h, 1)
	for i := s.home(h); ; {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
		if i++; i == len(s.slots) {
			i = 0
		}
	}
}

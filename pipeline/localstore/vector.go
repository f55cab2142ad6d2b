package localstore

import "math"

// Vectors of a collection live in fixed-size chunks of one contiguous
// float32 slab each, so growing never copies (nor doubles peak memory) and a
// row's slice stays valid.
const (
	chunkBits = 10
	chunkRows = 1 << chunkBits
)

// slab holds rows of dim float32s addressed by internal id.
type slab struct {
	dim    int
	n      int
	chunks [][]float32
}

// row returns row i; the slice aliases the slab.
func (s *slab) row(i uint32) []float32 {
	c := s.chunks[i>>chunkBits]
	o := int(i&(chunkRows-1)) * s.dim
	return c[o : o+s.dim : o+s.dim]
}

// push appends v as a new row and returns its id.
func (s *slab) push(v []float32) uint32 {
	i := s.n
	if i>>chunkBits >= len(s.chunks) {
		s.chunks = append(s.chunks, make([]float32, chunkRows*s.dim))
	}
	s.n++
	copy(s.row(uint32(i)), v)
	return uint32(i)
}

// dot is the inner product of two equally long vectors.
func dot(a, b []float32) float32 {
	if len(b) != len(a) {
		panic("localstore: dot of unequal lengths")
	}
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		a8, b8 := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += a8[0] * b8[0]
		s1 += a8[1] * b8[1]
		s2 += a8[2] * b8[2]
		s3 += a8[3] * b8[3]
		s4 += a8[4] * b8[4]
		s5 += a8[5] * b8[5]
		s6 += a8[6] * b8[6]
		s7 += a8[7] * b8[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// normalized returns v scaled to unit length (a zero vector stays zero).
func normalized(v []float32) []float32 {
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	out := make([]float32, len(v))
	if ss == 0 {
		return out
	}
	inv := 1 / math.Sqrt(ss)
	for i, f := range v {
		out[i] = float32(float64(f) * inv)
	}
	return out
}

// scored is a candidate: an internal id and its similarity to the query
// (higher is nearer).
type scored struct {
	id  uint32
	sim float32
}

// topK keeps the k highest-similarity candidates in a min-heap.
type topK struct {
	k int
	h []scored
}

func (t *topK) full() bool { return len(t.h) >= t.k }

// worst is the lowest similarity kept; valid when the heap is not empty.
func (t *topK) worst() float32 { return t.h[0].sim }

func (t *topK) offer(c scored) {
	if len(t.h) < t.k {
		t.h = append(t.h, c)
		up(t.h, len(t.h)-1, lessSim)
		return
	}
	if c.sim <= t.h[0].sim {
		return
	}
	t.h[0] = c
	down(t.h, 0, lessSim)
}

// sorted returns the kept candidates best first, emptying t.
func (t *topK) sorted() []scored {
	out := make([]scored, len(t.h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = t.h[0]
		last := len(t.h) - 1
		t.h[0] = t.h[last]
		t.h = t.h[:last]
		down(t.h, 0, lessSim)
	}
	return out
}

func lessSim(a, b scored) bool { return a.sim < b.sim }
func moreSim(a, b scored) bool { return a.sim > b.sim }

// up and down are binary-heap sifts ordered by less (root is least).
func up(h []scored, i int, less func(a, b scored) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func down(h []scored, i int, less func(a, b scored) bool) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

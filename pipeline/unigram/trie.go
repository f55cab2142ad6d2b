package unigram

import "slices"

// unit is one state of the double-array trie. A transition from state s on
// byte c goes to t = base[s] + c when check[t] == s. Keeping the three fields
// together puts everything one step reads on a single cache line.
type unit struct {
	base  int32 // offset of this state's children; 0 when it has none
	check int32 // parent state; freeSlot when unused, rootCheck for the root
	value int32 // piece id that ends at this state, or -1
}

const (
	freeSlot  = -1
	rootCheck = -2
)

// trie is a byte-wise double-array trie over the vocabulary pieces. State 0
// is the root. It is read-only after build and safe for concurrent use.
type trie struct {
	units []unit
}

// trieBuilder assigns double-array offsets to a sorted key set, depth first,
// with the free-slot search heuristic of Darts (nextCheckPos skips the dense
// head of the array).
type trieBuilder struct {
	units        []unit
	keys         [][]byte // sorted, unique
	ids          []int32  // piece id of keys[i]
	nextCheckPos int
	labels       []byte // stack of the open frames' child labels
	bounds       []int  // stack of the open frames' key ranges
}

// buildTrie builds a trie mapping each key to its id. keys must be sorted
// and unique and none may be empty.
func buildTrie(keys [][]byte, ids []int32) trie {
	b := &trieBuilder{keys: keys, ids: ids}
	b.grow(1 << 16)
	b.units[0].check = rootCheck
	b.insert(0, 0, len(keys), 0)
	// Trim to the last used slot plus room for any base+255, so lookups need
	// only one bounds check.
	last := 0
	for i := range b.units {
		if b.units[i].check != freeSlot {
			last = i
		}
	}
	for i := range b.units[:last+1] {
		if bs := int(b.units[i].base) + 256; b.units[i].check != freeSlot && bs > last {
			last = bs
		}
	}
	n := min(last+1, len(b.units))
	return trie{units: slices.Clip(b.units[:n])}
}

func (b *trieBuilder) grow(n int) {
	if n <= len(b.units) {
		return
	}
	size := max(n, 2*len(b.units))
	old := len(b.units)
	b.units = slices.Grow(b.units, size-old)[:size]
	for i := old; i < size; i++ {
		b.units[i] = unit{check: freeSlot, value: -1}
	}
}

// insert places the children of state s, whose keys are keys[lo:hi] and
// share their first depth bytes, then recurses into each child. A frame's
// labels and bounds live on the builder's shared stacks, addressed by index
// because deeper frames may grow them.
func (b *trieBuilder) insert(s int32, lo, hi, depth int) {
	if lo < hi && len(b.keys[lo]) == depth {
		b.units[s].value = b.ids[lo]
		lo++
	}
	if lo >= hi {
		return
	}
	l0, b0 := len(b.labels), len(b.bounds)
	for i := lo; i < hi; i++ {
		c := b.keys[i][depth]
		if len(b.labels) == l0 || b.labels[len(b.labels)-1] != c {
			b.labels = append(b.labels, c)
			b.bounds = append(b.bounds, i)
		}
	}
	b.bounds = append(b.bounds, hi)
	n := len(b.labels) - l0

	base := b.findBase(b.labels[l0:])
	b.units[s].base = int32(base)
	for _, c := range b.labels[l0:] {
		b.units[base+int(c)].check = s
	}
	for k := range n {
		c := b.labels[l0+k]
		b.insert(int32(base+int(c)), b.bounds[b0+k], b.bounds[b0+k+1], depth+1)
	}
	b.labels, b.bounds = b.labels[:l0], b.bounds[:b0]
}

// findBase returns the smallest offset at or after the search hint for which
// every labelled child slot is free.
func (b *trieBuilder) findBase(labels []byte) int {
	first := int(labels[0])
	pos := max(first+1, b.nextCheckPos) - 1
	nonzero, firstFree := 0, true
	for {
		pos++
		b.grow(pos + 257)
		if b.units[pos].check != freeSlot {
			nonzero++
			continue
		}
		if firstFree {
			b.nextCheckPos = pos
			firstFree = false
		}
		base := pos - first
		if base < 1 {
			continue
		}
		ok := true
		for _, c := range labels[1:] {
			if b.units[base+int(c)].check != freeSlot {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if float64(nonzero)/float64(pos-b.nextCheckPos+1) >= 0.95 {
			b.nextCheckPos = pos
		}
		return base
	}
}

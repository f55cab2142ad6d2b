package localstore

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
)

// graph is a hierarchical navigable small world index (Malkov & Yashunin)
// over the rows of a slab, by inner product of unit vectors. Nodes are
// internal ids; a deleted point stays in the graph as a route and is
// filtered out of results. The owner serialises insert against search.
type graph struct {
	vecs     *slab
	m, m0    int
	efC      int
	ml       float64
	rng      *rand.Rand
	links    [][]nodeLinks // links[node][level]; nil when not in the graph
	entry    uint32
	maxLevel int
	empty    bool
	visited  sync.Pool // *visitSet
}

// nodeLinks is a neighbour list sorted by similarity to its node, best first.
type nodeLinks struct {
	ids  []uint32
	sims []float32
}

type visitSet struct {
	gen   uint32
	stamp []uint32
}

func newGraph(vecs *slab, m, efC int) *graph {
	return &graph{
		vecs:  vecs,
		m:     m,
		m0:    2 * m,
		efC:   efC,
		ml:    1 / math.Log(float64(m)),
		rng:   rand.New(rand.NewPCG(1, 2)),
		empty: true,
	}
}

func (g *graph) getVisit() *visitSet {
	v, _ := g.visited.Get().(*visitSet)
	if v == nil {
		v = &visitSet{}
	}
	if len(v.stamp) < len(g.links) {
		v.stamp = make([]uint32, len(g.links)+len(g.links)/4+64)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 {
		clear(v.stamp)
		v.gen = 1
	}
	return v
}

// insert adds node (a row of vecs) to the graph.
func (g *graph) insert(node uint32) {
	for int(node) >= len(g.links) {
		g.links = append(g.links, nil)
	}
	level := int(-math.Log(1-g.rng.Float64()) * g.ml)
	level = min(level, 32)
	nl := make([]nodeLinks, level+1)
	g.links[node] = nl
	if g.empty {
		g.entry, g.maxLevel, g.empty = node, level, false
		return
	}
	q := g.vecs.row(node)
	ep := scored{g.entry, dot(q, g.vecs.row(g.entry))}
	for l := g.maxLevel; l > level; l-- {
		ep = g.greedy(q, ep, l)
	}
	eps := []scored{ep}
	for l := min(level, g.maxLevel); l >= 0; l-- {
		w := g.searchLayer(q, eps, g.efC, l, nil)
		maxConn := g.m
		if l == 0 {
			maxConn = g.m0
		}
		sel := g.selectHeuristic(w, g.m)
		nl[l] = nodeLinks{ids: make([]uint32, 0, maxConn), sims: make([]float32, 0, maxConn)}
		for _, s := range sel {
			nl[l].ids = append(nl[l].ids, s.id)
			nl[l].sims = append(nl[l].sims, s.sim)
		}
		for _, s := range sel {
			g.link(s.id, l, node, s.sim, maxConn)
		}
		eps = w
	}
	if level > g.maxLevel {
		g.entry, g.maxLevel = node, level
	}
}

// link adds to into from's list at level, keeping the maxConn nearest.
func (g *graph) link(from uint32, level int, to uint32, sim float32, maxConn int) {
	nl := &g.links[from][level]
	i := sort.Search(len(nl.sims), func(i int) bool { return nl.sims[i] < sim })
	if len(nl.ids) >= maxConn {
		if i >= maxConn {
			return
		}
		nl.ids = nl.ids[:maxConn-1]
		nl.sims = nl.sims[:maxConn-1]
	}
	nl.ids = append(nl.ids, 0)
	nl.sims = append(nl.sims, 0)
	copy(nl.ids[i+1:], nl.ids[i:])
	copy(nl.sims[i+1:], nl.sims[i:])
	nl.ids[i], nl.sims[i] = to, sim
}

// greedy walks level from ep to a local best.
func (g *graph) greedy(q []float32, ep scored, level int) scored {
	for changed := true; changed; {
		changed = false
		for _, n := range g.links[ep.id][level].ids {
			if s := dot(q, g.vecs.row(n)); s > ep.sim {
				ep, changed = scored{n, s}, true
			}
		}
	}
	return ep
}

// selectHeuristic picks up to m of cands (best first) that are nearer the
// query than to any already picked, which keeps links spread out; it tops
// up with the nearest rejects.
func (g *graph) selectHeuristic(cands []scored, m int) []scored {
	if len(cands) <= m {
		return cands
	}
	out := make([]scored, 0, m)
	var rejects []scored
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		cv := g.vecs.row(c.id)
		good := true
		for _, r := range out {
			if dot(cv, g.vecs.row(r.id)) > c.sim {
				good = false
				break
			}
		}
		if good {
			out = append(out, c)
		} else {
			rejects = append(rejects, c)
		}
	}
	for _, r := range rejects {
		if len(out) >= m {
			break
		}
		out = append(out, r)
	}
	return out
}

// searchLayer returns up to ef nodes near q on level, best first, starting
// from eps. Only nodes accept allows (nil: all) enter the results; the rest
// are still walked through.
func (g *graph) searchLayer(q []float32, eps []scored, ef, level int, accept func(uint32) bool) []scored {
	vs := g.getVisit()
	defer g.visited.Put(vs)
	cand := make([]scored, 0, ef*2) // max-heap by similarity
	res := topK{k: ef, h: make([]scored, 0, ef+1)}
	for _, e := range eps {
		vs.stamp[e.id] = vs.gen
		cand = append(cand, e)
		up(cand, len(cand)-1, moreSim)
		if accept == nil || accept(e.id) {
			res.offer(e)
		}
	}
	for len(cand) > 0 {
		c := cand[0]
		last := len(cand) - 1
		cand[0] = cand[last]
		cand = cand[:last]
		down(cand, 0, moreSim)
		if res.full() && c.sim < res.worst() {
			break
		}
		nl := g.links[c.id]
		if level >= len(nl) {
			continue
		}
		for _, n := range nl[level].ids {
			if vs.stamp[n] == vs.gen {
				continue
			}
			vs.stamp[n] = vs.gen
			s := dot(q, g.vecs.row(n))
			if res.full() && s <= res.worst() {
				continue
			}
			cand = append(cand, scored{n, s})
			up(cand, len(cand)-1, moreSim)
			if accept == nil || accept(n) {
				res.offer(scored{n, s})
			}
		}
	}
	return res.sorted()
}

// search returns up to k accepted nodes nearest q, best first.
func (g *graph) search(q []float32, k, ef int, accept func(uint32) bool) []scored {
	if g.empty {
		return nil
	}
	ep := scored{g.entry, dot(q, g.vecs.row(g.entry))}
	for l := g.maxLevel; l > 0; l-- {
		ep = g.greedy(q, ep, l)
	}
	res := g.searchLayer(q, []scored{ep}, max(ef, k), 0, accept)
	if len(res) > k {
		res = res[:k]
	}
	return res
}

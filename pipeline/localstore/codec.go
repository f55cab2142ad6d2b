package localstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/streamrec/streamrec/pipeline"
)

// Binary encoding shared by the write-ahead log and snapshots. Integers are
// unsigned varints unless noted, floats little-endian IEEE 754.

// Payload value type tags.
const (
	tagString  byte = 1
	tagStrings byte = 2
	tagFloat   byte = 3
	tagInt     byte = 4
	tagBool    byte = 5
)

// errCorrupt reports bytes that do not decode.
var errCorrupt = errors.New("localstore: corrupt record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVector(b []byte, v []float32) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// appendPayload encodes p with keys sorted, so equal payloads encode equally.
func appendPayload(b []byte, p pipeline.Payload) ([]byte, error) {
	keys := make([]string, 0, len(p))
	for k, v := range p {
		if v != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		switch v := p[k].(type) {
		case string:
			b = appendString(append(b, tagString), v)
		case []string:
			b = binary.AppendUvarint(append(b, tagStrings), uint64(len(v)))
			for _, s := range v {
				b = appendString(b, s)
			}
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(v))
		case float32:
			b = binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(float64(v)))
		case int64:
			b = binary.AppendVarint(append(b, tagInt), v)
		case int:
			b = binary.AppendVarint(append(b, tagInt), int64(v))
		case int32:
			b = binary.AppendVarint(append(b, tagInt), int64(v))
		case bool:
			x := byte(0)
			if v {
				x = 1
			}
			b = append(b, tagBool, x)
		default:
			return nil, fmt.Errorf("payload key %q: unsupported type %T (want string, []string, float64, int64 or bool)", k, v)
		}
	}
	return b, nil
}

func appendPoint(b []byte, id string, vec []float32, p pipeline.Payload) ([]byte, error) {
	b = appendString(b, id)
	b = appendVector(b, vec)
	return appendPayload(b, p)
}

// decoder reads the encoding above; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	x := d.b[0]
	d.b = d.b[1:]
	return x
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	x := d.b[:n]
	d.b = d.b[n:]
	return x
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

// count reads a length and checks that at least min bytes per element remain.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/max(min, 1)) {
		d.fail()
		return 0
	}
	return int(n)
}

// vectorInto decodes a vector into dst (len dim) or fails on a length mismatch.
func (d *decoder) vectorInto(dst []float32) {
	n := d.uvarint()
	if n != uint64(len(dst)) {
		d.fail()
		return
	}
	raw := d.bytes(4 * n)
	if raw == nil {
		return
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
}

func (d *decoder) vector() []float32 {
	n := d.count(4)
	v := make([]float32, n)
	raw := d.bytes(4 * uint64(n))
	if raw == nil {
		return nil
	}
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

func (d *decoder) payload() pipeline.Payload {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	p := make(pipeline.Payload, n)
	for range n {
		k := d.string()
		switch d.byte() {
		case tagString:
			p[k] = d.string()
		case tagStrings:
			m := d.count(1)
			ss := make([]string, m)
			for i := range ss {
				ss[i] = d.string()
			}
			p[k] = ss
		case tagFloat:
			raw := d.bytes(8)
			if raw != nil {
				p[k] = math.Float64frombits(binary.LittleEndian.Uint64(raw))
			}
		case tagInt:
			p[k] = d.varint()
		case tagBool:
			p[k] = d.byte() == 1
		default:
			d.fail()
		}
		if d.err != nil {
			return nil
		}
	}
	return p
}

package qdranttest

import (
	"strconv"
	"strings"

	"github.com/qdrant/go-client/qdrant"
)

// pathItem is one step of a payload key path: a key, an array index, or
// every element of an array (index -1).
type pathItem struct {
	key   string
	index int
	isKey bool
}

// parsePath parses a payload key as Qdrant does: keys joined by dots, each
// key plain (no '.', '[', ']' or '"') or in double quotes (anything but a
// quote, dots included), and each followed by any number of [] (every
// element) or [N] (element N). "a.b" is key b inside object a; a flat key
// with a dot is written "\"a.b\"".
func parsePath(s string) ([]pathItem, bool) {
	var items []pathItem
	for first := true; ; first = false {
		if !first {
			if s == "" {
				return items, len(items) > 0
			}
			if s[0] != '.' {
				return nil, false
			}
			s = s[1:]
		}
		var key string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, false
			}
			key, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, `.[]"`)
			if end < 0 {
				end = len(s)
			}
			key, s = s[:end], s[end:]
			if key == "" {
				return nil, false
			}
		}
		items = append(items, pathItem{key: key, isKey: true})
		for strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, false
			}
			idx := -1
			if inner := s[1:end]; inner != "" {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, false
				}
				idx = n
			}
			items = append(items, pathItem{index: idx})
			s = s[end+1:]
		}
	}
}

// lookup returns the values at key in a payload (several through []), as
// Qdrant's JSON path does: a key step needs an object, an index step an
// array; anything else yields nothing.
func lookup(payload map[string]*qdrant.Value, key string) ([]*qdrant.Value, error) {
	path, ok := parsePath(key)
	if !ok {
		return nil, errWrongInput("Invalid payload key path %q", key)
	}
	v, ok := payload[path[0].key]
	if !ok {
		return nil, nil
	}
	var out []*qdrant.Value
	walk(path[1:], v, &out)
	return out, nil
}

func walk(path []pathItem, v *qdrant.Value, out *[]*qdrant.Value) {
	if len(path) == 0 {
		*out = append(*out, v)
		return
	}
	head, tail := path[0], path[1:]
	switch {
	case head.isKey:
		if sv := v.GetStructValue(); sv != nil {
			if next, ok := sv.GetFields()[head.key]; ok {
				walk(tail, next, out)
			}
		}
	case v.GetListValue() != nil:
		elems := v.GetListValue().GetValues()
		if head.index < 0 {
			for _, e := range elems {
				walk(tail, e, out)
			}
		} else if head.index < len(elems) {
			walk(tail, elems[head.index], out)
		}
	}
}

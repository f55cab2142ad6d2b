package schemas

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
)

func TestSchemaFiles(t *testing.T) {
	names, err := fs.Glob(SchemaFS(), "*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{SchemaCatalog, SchemaClickstream, SchemaRecoReply, SchemaRecoRequest}
	if !slices.Equal(names, want) {
		t.Errorf("SchemaFS holds %v, want %v", names, want)
	}
	for _, name := range want {
		b, err := SchemaJSON(name)
		if err != nil || !json.Valid(b) {
			t.Errorf("SchemaJSON(%q): %d bytes, valid JSON %v, error %v", name, len(b), json.Valid(b), err)
		}
	}
	if _, err := SchemaJSON("nope.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SchemaJSON of an unknown name: %v, want fs.ErrNotExist", err)
	}
}

// TestSchemaLimits checks that the numbers in the JSON Schema files are
// DefaultLimits: a value at each limit passes both the decoder and the
// schema, one past it fails both.
func TestSchemaLimits(t *testing.T) {
	schemas := compileSchemas(t)
	lim := DefaultLimits()
	str := func(n int) any { return strings.Repeat("x", n) }
	num := func(n int) any { return n }
	ids := func(n int) any {
		out := make([]any, n)
		for i := range out {
			out[i] = fmt.Sprint("i-", i)
		}
		return out
	}
	items := func(n int) any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"item_id": fmt.Sprint("i-", i), "score": 1}
		}
		return out
	}
	attrs := func(n int) any {
		out := map[string]any{}
		for i := range n {
			out[fmt.Sprint("k", i)] = "v"
		}
		return out
	}
	click := `{"event_id":"e-1","type":"add_to_cart","user_id":"u-1","item_id":"i-1","price":1,"quantity":1,"timestamp":"2025-06-01T11:59:30Z","context":{}}`
	search := `{"event_id":"e-1","type":"search","user_id":"u-1","query":"q","timestamp":"2025-06-01T11:59:30Z"}`
	upsert := `{"op":"upsert","item_id":"i-1","title":"T","updated_at":"2025-06-01T11:00:00Z","attributes":{}}`
	request := `{"request_id":"r-1","kind":"search","query":"q","k":1,"filters":{}}`
	reply := `{"request_id":"r-1","items":[{"item_id":"i-1","score":1}]}`
	tests := []struct {
		contract, base string
		path           []string // where to put the value; "*" for a key of attributes
		value          func(int) any
		limit          int
	}{
		{"clickstream", click, []string{"event_id"}, str, lim.MaxIDLen},
		{"clickstream", click, []string{"user_id"}, str, lim.MaxIDLen},
		{"clickstream", click, []string{"session_id"}, str, lim.MaxIDLen},
		{"clickstream", click, []string{"item_id"}, str, lim.MaxIDLen},
		{"clickstream", click, []string{"quantity"}, num, lim.MaxQuantity},
		{"clickstream", search, []string{"query"}, str, lim.MaxTextLen},
		{"clickstream", click, []string{"context", "device"}, str, lim.MaxNameLen},
		{"clickstream", click, []string{"context", "locale"}, str, lim.MaxNameLen},
		{"clickstream", click, []string{"context", "page"}, str, lim.MaxTextLen},
		{"clickstream", click, []string{"context", "reco_request_id"}, str, lim.MaxIDLen},
		{"catalog", upsert, []string{"item_id"}, str, lim.MaxIDLen},
		{"catalog", upsert, []string{"title"}, str, lim.MaxTextLen},
		{"catalog", upsert, []string{"description"}, str, lim.MaxDescriptionLen},
		{"catalog", upsert, []string{"brand"}, str, lim.MaxNameLen},
		{"catalog", upsert, []string{"category_path"}, ids, lim.MaxCategoryDepth},
		{"catalog", upsert, []string{"attributes"}, attrs, lim.MaxAttributes},
		{"catalog", upsert, []string{"attributes", "color"}, str, lim.MaxTextLen},
		{"catalog", upsert, []string{"attributes", "*"}, str, lim.MaxNameLen},
		{"reco_request", request, []string{"request_id"}, str, lim.MaxIDLen},
		{"reco_request", request, []string{"query"}, str, lim.MaxTextLen},
		{"reco_request", request, []string{"k"}, num, lim.MaxK},
		{"reco_request", request, []string{"exclude"}, ids, lim.MaxExclude},
		{"reco_request", request, []string{"filters", "category"}, str, lim.MaxNameLen},
		{"reco_request", request, []string{"filters", "brand"}, str, lim.MaxNameLen},
		{"reco_reply", reply, []string{"request_id"}, str, lim.MaxIDLen},
		{"reco_reply", reply, []string{"items"}, items, lim.MaxK},
		{"reco_reply", reply, []string{"model_version"}, str, lim.MaxNameLen},
		{"reco_reply", reply, []string{"error"}, str, lim.MaxTextLen},
	}
	for _, tc := range tests {
		for _, n := range []int{tc.limit, tc.limit + 1} {
			t.Run(fmt.Sprintf("%s/%s=%d", tc.contract, strings.Join(tc.path, "."), n), func(t *testing.T) {
				var doc map[string]any
				if err := json.Unmarshal([]byte(tc.base), &doc); err != nil {
					t.Fatal(err)
				}
				m := doc
				for _, k := range tc.path[:len(tc.path)-1] {
					m = m[k].(map[string]any)
				}
				if last := tc.path[len(tc.path)-1]; last == "*" {
					m[tc.value(n).(string)] = "v"
				} else {
					m[last] = tc.value(n)
				}
				data, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				_, goErr := contracts[tc.contract].decode(data, lim)
				schemaErr := schemaVerdict(schemas[tc.contract], data)
				if wantOK := n == tc.limit; (goErr == nil) != wantOK || (schemaErr == nil) != wantOK {
					t.Errorf("at %d (limit %d): decoder error %v, schema error %v", n, tc.limit, goErr, schemaErr)
				}
			})
		}
	}
}

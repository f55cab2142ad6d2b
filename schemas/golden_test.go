package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// goldenNow is the reference time of every golden example.
var goldenNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// contracts maps a testdata folder to its decoder, run at goldenNow, and
// its JSON Schema file.
var contracts = map[string]struct {
	decode func([]byte, Limits) (any, error)
	schema string
}{
	"clickstream":  {func(b []byte, l Limits) (any, error) { return DecodeClick(b, goldenNow, l) }, SchemaClickstream},
	"catalog":      {func(b []byte, l Limits) (any, error) { return DecodeCatalog(b, goldenNow, l) }, SchemaCatalog},
	"reco_request": {func(b []byte, l Limits) (any, error) { return DecodeRequest(b, goldenNow, l) }, SchemaRecoRequest},
	"reco_reply":   {func(b []byte, l Limits) (any, error) { return DecodeReply(b, l) }, SchemaRecoReply},
}

// golden is one example file under testdata/valid or testdata/invalid.
type golden struct {
	name     string // "clickstream/view.json"
	contract string
	data     []byte
	// For invalid examples, from testdata/invalid/manifest.json:
	wantErr     string
	schemaBlind string // why JSON Schema accepts this invalid example
}

// goldens loads the examples of one verdict ("valid" or "invalid"), for
// every contract or just the one named.
func goldens(tb testing.TB, verdict, contract string) []golden {
	tb.Helper()
	var manifest map[string]struct {
		Error       string `json:"error"`
		SchemaBlind string `json:"schema_blind"`
	}
	if verdict == "invalid" {
		b, err := os.ReadFile("testdata/invalid/manifest.json")
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, &manifest); err != nil {
			tb.Fatal(err)
		}
	}
	dir := filepath.Join("testdata", verdict)
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no golden files under %s: %v", dir, err)
	}
	var out []golden
	for _, p := range paths {
		g := golden{name: filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator))), contract: filepath.Base(filepath.Dir(p))}
		if _, ok := contracts[g.contract]; !ok {
			tb.Fatalf("%s: unknown contract folder %q", p, g.contract)
		}
		if contract != "" && g.contract != contract {
			continue
		}
		if g.data, err = os.ReadFile(p); err != nil {
			tb.Fatal(err)
		}
		if verdict == "invalid" {
			m, ok := manifest[g.name]
			if !ok {
				tb.Fatalf("%s has no entry in testdata/invalid/manifest.json", g.name)
			}
			g.wantErr, g.schemaBlind = m.Error, m.SchemaBlind
			delete(manifest, g.name)
		}
		out = append(out, g)
	}
	if contract == "" {
		for name := range manifest {
			tb.Errorf("manifest entry %s has no file", name)
		}
	}
	return out
}

func TestGoldenValid(t *testing.T) {
	for _, g := range goldens(t, "valid", "") {
		t.Run(g.name, func(t *testing.T) {
			if _, err := contracts[g.contract].decode(g.data, DefaultLimits()); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestGoldenInvalid(t *testing.T) {
	for _, g := range goldens(t, "invalid", "") {
		t.Run(g.name, func(t *testing.T) {
			v, err := contracts[g.contract].decode(g.data, DefaultLimits())
			if err == nil {
				t.Fatalf("accepted: %+v", v)
			}
			if err.Error() != g.wantErr {
				t.Errorf("error = %q, want %q", err, g.wantErr)
			}
			checkRejection(t, err)
		})
	}
}

// checkRejection asserts the error contract: every rejection wraps
// ErrInvalid and is a *FieldError or a *SyntaxError.
func checkRejection(t testing.TB, err error) {
	t.Helper()
	var fe *FieldError
	var se *SyntaxError
	if !errors.Is(err, ErrInvalid) || !(errors.As(err, &fe) || errors.As(err, &se)) {
		t.Fatalf("error %q (%T) is not a *FieldError or *SyntaxError wrapping ErrInvalid", err, err)
	}
}

// compileSchemas compiles the embedded JSON Schema files, asserting
// formats such as date-time.
func compileSchemas(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	ids := map[string]string{}
	for dir, ct := range contracts {
		b, err := SchemaJSON(ct.schema)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", ct.schema, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if !strings.HasSuffix(id, "/"+ct.schema) {
			t.Fatalf("%s: $id %q does not end with the file name", ct.schema, id)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		ids[dir] = id
	}
	out := map[string]*jsonschema.Schema{}
	for dir, id := range ids {
		s, err := c.Compile(id)
		if err != nil {
			t.Fatalf("compile %s: %v", id, err)
		}
		out[dir] = s
	}
	return out
}

// schemaVerdict validates data against s; a parse failure is a rejection.
func schemaVerdict(s *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

// TestGoldenSchemaAgrees checks that the JSON Schema files give every
// golden example the Go decoder's verdict, except invalid ones marked
// schema_blind, which the schema must then accept, so the marks stay true.
func TestGoldenSchemaAgrees(t *testing.T) {
	schemas := compileSchemas(t)
	for _, g := range goldens(t, "valid", "") {
		t.Run("valid/"+g.name, func(t *testing.T) {
			if err := schemaVerdict(schemas[g.contract], g.data); err != nil {
				t.Errorf("schema rejects a valid example: %v", err)
			}
		})
	}
	for _, g := range goldens(t, "invalid", "") {
		t.Run("invalid/"+g.name, func(t *testing.T) {
			err := schemaVerdict(schemas[g.contract], g.data)
			switch {
			case g.schemaBlind == "" && err == nil:
				t.Errorf("schema accepts an example the decoder rejects with %q", g.wantErr)
			case g.schemaBlind != "" && err != nil:
				t.Errorf("marked schema_blind (%s) but the schema rejects it: %v", g.schemaBlind, err)
			}
		})
	}
}

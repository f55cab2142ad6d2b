package schemas

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
)

// The fuzzers start from every golden example of their contract (f.Add)
// and from the edge cases committed under testdata/fuzz/<FuzzName>/. A
// decoder must never panic; it rejects with a *FieldError or *SyntaxError,
// or returns a value that survives checkRoundTrip.
//
// Go's fuzzer minimizes every new interesting input for up to a minute,
// counting no execs meanwhile; -fuzzminimizetime 200x keeps it fuzzing:
//
//	go test ./schemas -run '^$' -fuzz FuzzDecodeClick -fuzztime 30s -fuzzminimizetime 200x

func FuzzDecodeClick(f *testing.F)   { fuzzDecoder(f, "clickstream") }
func FuzzDecodeCatalog(f *testing.F) { fuzzDecoder(f, "catalog") }
func FuzzDecodeRequest(f *testing.F) { fuzzDecoder(f, "reco_request") }
func FuzzDecodeReply(f *testing.F)   { fuzzDecoder(f, "reco_reply") }

func fuzzDecoder(f *testing.F, contract string) {
	for _, verdict := range []string{"valid", "invalid"} {
		for _, g := range goldens(f, verdict, contract) {
			// Large seeds make the fuzzer spend its time minimizing
			// their mutants; the oversize examples have table tests.
			if len(g.data) <= 2<<10 {
				f.Add(g.data)
			}
		}
	}
	decode := contracts[contract].decode
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decode(data, DefaultLimits())
		if err != nil {
			checkRejection(t, err)
			return
		}
		checkRoundTrip(t, decode, v)
	})
}

// checkRoundTrip asserts that a decoded value v encodes to JSON that
// decodes to an equal value, which encodes to the same bytes and passes
// Validate.
func checkRoundTrip(t *testing.T, decode func([]byte, Limits) (any, error), v any) {
	t.Helper()
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %+v: %v", v, err)
	}
	// Encoding adds fields a record may leave out and escapes differently,
	// so only the size of the re-encoding is not bounded by the original.
	lim := DefaultLimits()
	lim.MaxBytes = math.MaxInt
	v2, err := decode(b1, lim)
	if err != nil {
		t.Fatalf("re-decode %s: %v", b1, err)
	}
	if !reflect.DeepEqual(canonical(v), canonical(v2)) {
		t.Fatalf("round trip changed the value:\n  %+v\n  %+v", v, v2)
	}
	if b2, err := json.Marshal(v2); err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("re-encoding differs (%v):\n  %s\n  %s", err, b1, b2)
	}
	if err := validate(v2); err != nil {
		t.Fatalf("decoded value fails Validate: %v", err)
	}
}

// canonical removes what JSON does not carry: a timestamp's *time.Location
// (only its offset travels) and the difference between an empty and a nil
// slice or map that omitempty leaves out.
func canonical(v any) any {
	utc := func(t time.Time) time.Time { return t.UTC() }
	switch x := v.(type) {
	case ClickEvent:
		x.Timestamp = utc(x.Timestamp)
		return x
	case CatalogChange:
		x.UpdatedAt = utc(x.UpdatedAt)
		if len(x.CategoryPath) == 0 {
			x.CategoryPath = nil
		}
		if len(x.Attributes) == 0 {
			x.Attributes = nil
		}
		return x
	case RecoRequest:
		if x.Deadline != nil {
			x.Deadline = ptr(utc(*x.Deadline))
		}
		if len(x.Exclude) == 0 {
			x.Exclude = nil
		}
		return x
	}
	return v
}

func validate(v any) error {
	lim := DefaultLimits()
	switch x := v.(type) {
	case ClickEvent:
		return x.Validate(goldenNow, lim)
	case CatalogChange:
		return x.Validate(goldenNow, lim)
	case RecoRequest:
		return x.Validate(goldenNow, lim)
	case RecoReply:
		return x.Validate(lim)
	}
	panic("unknown contract type")
}

// TestRoundTrip encodes fully populated values of every contract and
// decodes them back unchanged, then round-trips every valid golden example.
func TestRoundTrip(t *testing.T) {
	ts := goldenNow.Add(-time.Minute)
	values := map[string]any{
		"clickstream": ClickEvent{EventID: "e-1", Type: EventPurchase, UserID: "u-1", SessionID: "s-1", ItemID: "i-1",
			Price: 12.25, Quantity: 2, Timestamp: ts, Context: EventContext{Device: "ios", Locale: "fr-FR", Page: "/c", RecoRequestID: "r-1"}},
		"catalog": CatalogChange{Op: OpUpsert, ItemID: "i-1", Title: "T <b>&</b>", Description: "D\n\"q\"", CategoryPath: []string{"A", "B"},
			Brand: "Acme", Price: 0.1, Currency: "JPY", InStock: true, Attributes: map[string]string{"a": "1", "b": "ü"}, UpdatedAt: ts},
		"reco_request": RecoRequest{RequestID: "r-1", Kind: KindSimilarItems, ItemID: "i-1", K: 7, Exclude: []string{"i-2"}, Deadline: ptr(goldenNow.Add(time.Second)),
			Filters: Filters{Category: "A", Brand: "B", MinPrice: ptr(1.0), MaxPrice: ptr(2.0), InStock: ptr(true)}},
		"reco_reply": RecoReply{RequestID: "r-1", Items: []ReplyItem{{ItemID: "i-1", Score: 1e-9, Reason: "r"}}, ModelVersion: "m", Fallback: true, Error: "e"},
	}
	for contract, want := range values {
		t.Run(contract, func(t *testing.T) {
			b, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := contracts[contract].decode(b, DefaultLimits())
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			checkRoundTrip(t, contracts[contract].decode, got)
		})
	}
	for _, g := range goldens(t, "valid", "") {
		t.Run(g.name, func(t *testing.T) {
			v, err := contracts[g.contract].decode(g.data, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, contracts[g.contract].decode, v)
		})
	}
}

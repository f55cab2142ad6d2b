package schemas

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeCase is one named case of a decoder's table: either want or wantErr,
// the exact error text.
type decodeCase[T any] struct {
	name    string
	in      string
	lim     func(*Limits) // adjusts DefaultLimits, when set
	want    T
	wantErr string
}

func runDecodeCases[T any](t *testing.T, decode func([]byte, Limits) (T, error), cases []decodeCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim := DefaultLimits()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			got, err := decode([]byte(tc.in), lim)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if err.Error() != tc.wantErr {
					t.Errorf("error = %q, want %q", err, tc.wantErr)
				}
				checkRejection(t, err)
				if !reflect.ValueOf(got).IsZero() {
					t.Errorf("rejected record returned %+v, want the zero value", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func TestDecodeClick(t *testing.T) {
	const ts = `"timestamp":"2025-06-01T11:59:30Z"`
	decode := func(b []byte, l Limits) (ClickEvent, error) { return DecodeClick(b, goldenNow, l) }
	base := func(e ClickEvent) ClickEvent {
		e.EventID, e.UserID, e.Timestamp = "e-1", "u-1", at("2025-06-01T11:59:30Z")
		return e
	}
	runDecodeCases(t, decode, []decodeCase[ClickEvent]{
		{name: "view with context",
			in: `{"event_id":"e-1","type":"view","user_id":"u-1","session_id":"s-1","item_id":"i-1",` + ts +
				`,"context":{"device":"web","locale":"en-GB","page":"/p/1","reco_request_id":"r-1"}}`,
			want: base(ClickEvent{Type: EventView, SessionID: "s-1", ItemID: "i-1",
				Context: EventContext{Device: "web", Locale: "en-GB", Page: "/p/1", RecoRequestID: "r-1"}})},
		{name: "click", in: `{"event_id":"e-1","type":"click","user_id":"u-1","item_id":"i-1",` + ts + `}`,
			want: base(ClickEvent{Type: EventClick, ItemID: "i-1"})},
		{name: "add_to_cart", in: `{"event_id":"e-1","type":"add_to_cart","user_id":"u-1","item_id":"i-1","price":9.5,"quantity":3,` + ts + `}`,
			want: base(ClickEvent{Type: EventAddToCart, ItemID: "i-1", Price: 9.5, Quantity: 3})},
		{name: "purchase at price zero", in: `{"event_id":"e-1","type":"purchase","user_id":"u-1","item_id":"i-1","price":0,"quantity":1,` + ts + `}`,
			want: base(ClickEvent{Type: EventPurchase, ItemID: "i-1", Quantity: 1})},
		{name: "search", in: `{"event_id":"e-1","type":"search","user_id":"u-1","query":"caf\u00e9 \"bar\"",` + ts + `}`,
			want: base(ClickEvent{Type: EventSearch, Query: `café "bar"`})},
		{name: "unknown fields and nulls ignored",
			in:   `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"i-1","session_id":null,"context":null,"v2_field":{"a":[1,{"b":null}]},` + ts + `}`,
			want: base(ClickEvent{Type: EventView, ItemID: "i-1"})},
		{name: "white space around the object", in: " \n\t{\"event_id\":\"e-1\",\"type\":\"view\",\"user_id\":\"u-1\",\"item_id\":\"i-1\"," + ts + "}\r\n",
			want: base(ClickEvent{Type: EventView, ItemID: "i-1"})},
		{name: "duplicate key: last wins", in: `{"event_id":"e-1","type":"view","user_id":"x","user_id":"u-1","item_id":"i-1",` + ts + `}`,
			want: base(ClickEvent{Type: EventView, ItemID: "i-1"})},
		{name: "max_age 0 allows any age", lim: func(l *Limits) { l.MaxAge = 0 },
			in:   `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"i-1","timestamp":"2001-01-01T00:00:00Z"}`,
			want: ClickEvent{EventID: "e-1", Type: EventView, UserID: "u-1", ItemID: "i-1", Timestamp: at("2001-01-01T00:00:00Z")}},
		{name: "timestamp exactly max skew ahead",
			in:   `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"i-1","timestamp":"2025-06-01T12:05:00Z"}`,
			want: ClickEvent{EventID: "e-1", Type: EventView, UserID: "u-1", ItemID: "i-1", Timestamp: at("2025-06-01T12:05:00Z")}},

		{name: "oversize record", in: `{"event_id":"` + strings.Repeat("x", 70000) + `"}`,
			wantErr: "record: 70015 bytes exceeds max 65536"},
		{name: "custom max_bytes", lim: func(l *Limits) { l.MaxBytes = 10 }, in: `{"event_id":"e-1"}`,
			wantErr: "record: 18 bytes exceeds max 10"},
		{name: "timestamp just past max skew",
			in:      `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"i-1","timestamp":"2025-06-01T12:05:00.001Z"}`,
			wantErr: "event.timestamp: 5m0.001s in the future (max skew 5m0s)"},
		{name: "zone offset beyond a day",
			in:      `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"i-1","timestamp":"2025-06-01T12:00:00+24:00"}`,
			wantErr: "event.timestamp: zone offset out of range -23:59..+23:59"},
		{name: "quantity overflows", in: `{"event_id":"e-1","type":"purchase","quantity":99999999999999999999}`,
			wantErr: "event.quantity: 1e+20 out of range"},
		{name: "price overflows", in: `{"event_id":"e-1","type":"purchase","price":1e400}`,
			wantErr: "event.price: number out of range"},
		{name: "type is a number", in: `{"event_id":"e-1","type":3}`, wantErr: "event.type: wrong type: got number, want string"},
		{name: "first failing field is reported", in: `{"type":"buy"}`, wantErr: "event.event_id: missing"},
		{name: "byte order mark", in: "\ufeff{}", wantErr: "malformed JSON at offset 0: invalid character '\u00ef' looking for beginning of value"},
		{name: "control character in a string", in: "{\"event_id\":\"\x00\"}", wantErr: "malformed JSON at offset 12: invalid character '?' in string escape code"},
		{name: "integral quantity with fraction or exponent", in: `{"event_id":"e-1","type":"purchase","user_id":"u-1","item_id":"i-1","price":1,"quantity":2.0e0,` + ts + `}`,
			want: base(ClickEvent{Type: EventPurchase, ItemID: "i-1", Price: 1, Quantity: 2})},
		{name: "string", in: `"view"`, wantErr: "record: wrong type: got string, want object"},
		{name: "bad escape", in: `{"event_id":"\x"}`, wantErr: `malformed JSON at offset 12: invalid character 'x' in string escape code`},

		// Ids refuse control characters, escaped or raw, naming the first
		// one and its byte offset in the id; free text keeps them.
		{name: "NUL in user_id", in: `{"event_id":"e-1","type":"view","user_id":"u-1\u0000","item_id":"i-1",` + ts + `}`,
			wantErr: "event.user_id: control character U+0000 at byte 3"},
		{name: "raw DEL in event_id", in: "{\"event_id\":\"e-\x7f\",\"type\":\"view\",\"user_id\":\"u-1\",\"item_id\":\"i-1\"," + ts + "}",
			wantErr: "event.event_id: control character U+007F at byte 2"},
		{name: "line break in session_id", in: `{"event_id":"e-1","type":"view","user_id":"u-1","session_id":"s-1\r\n","item_id":"i-1",` + ts + `}`,
			wantErr: "event.session_id: control character U+000D at byte 3"},
		{name: "C1 control after a multi-byte character in item_id", in: `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"é\u0085",` + ts + `}`,
			wantErr: "event.item_id: control character U+0085 at byte 2"},
		{name: "escape in context.reco_request_id",
			in:      `{"event_id":"e-1","type":"view","user_id":"u-1","item_id":"i-1",` + ts + `,"context":{"reco_request_id":"\u001b[0m"}}`,
			wantErr: "event.context.reco_request_id: control character U+001B at byte 0"},
		{name: "white space only id is blank, not a control character", in: `{"event_id":"e-1","type":"view","user_id":"\t\n","item_id":"i-1",` + ts + `}`,
			wantErr: "event.user_id: blank"},
		{name: "tab in a query is free text, not an id", in: `{"event_id":"e-1","type":"search","user_id":"u-1","query":"red\tshoes",` + ts + `}`,
			want: base(ClickEvent{Type: EventSearch, Query: "red\tshoes"})},
	})
}

func TestDecodeCatalog(t *testing.T) {
	const ua = `"updated_at":"2025-06-01T11:00:00Z"`
	decode := func(b []byte, l Limits) (CatalogChange, error) { return DecodeCatalog(b, goldenNow, l) }
	updated := at("2025-06-01T11:00:00Z")
	runDecodeCases(t, decode, []decodeCase[CatalogChange]{
		{name: "upsert with everything",
			in: `{"op":"upsert","item_id":"i-1","title":"Shoe","description":"Light.","category_path":["Shoes","Trail"],"brand":"Acme",` +
				`"price":89.5,"currency":"EUR","in_stock":true,"attributes":{"color":"red"},` + ua + `}`,
			want: CatalogChange{Op: OpUpsert, ItemID: "i-1", Title: "Shoe", Description: "Light.", CategoryPath: []string{"Shoes", "Trail"},
				Brand: "Acme", Price: 89.5, Currency: "EUR", InStock: true, Attributes: map[string]string{"color": "red"}, UpdatedAt: updated}},
		{name: "delete", in: `{"op":"delete","item_id":"i-1",` + ua + `}`,
			want: CatalogChange{Op: OpDelete, ItemID: "i-1", UpdatedAt: updated}},
		{name: "no age limit on updated_at", in: `{"op":"delete","item_id":"i-1","updated_at":"1999-12-31T23:59:59Z"}`,
			want: CatalogChange{Op: OpDelete, ItemID: "i-1", UpdatedAt: at("1999-12-31T23:59:59Z")}},

		{name: "title over max_text_len", lim: func(l *Limits) { l.MaxTextLen = 4 },
			in: `{"op":"upsert","item_id":"i-1","title":"Shoes",` + ua + `}`, wantErr: "catalog.title: 5 bytes exceeds max 4"},
		{name: "length counts bytes", lim: func(l *Limits) { l.MaxTextLen = 4 },
			in: `{"op":"upsert","item_id":"i-1","title":"ééé",` + ua + `}`, wantErr: "catalog.title: 6 bytes exceeds max 4"},
		{name: "too many attributes", lim: func(l *Limits) { l.MaxAttributes = 1 },
			in:      `{"op":"upsert","item_id":"i-1","title":"T","attributes":{"a":"1","b":"2"},` + ua + `}`,
			wantErr: "catalog.attributes: 2 entries exceeds max 1"},
		{name: "attribute key blank", in: `{"op":"upsert","item_id":"i-1","title":"T","attributes":{" ":"1"},` + ua + `}`,
			wantErr: `catalog.attributes: key " " blank`},
		{name: "attribute value too long", lim: func(l *Limits) { l.MaxTextLen = 2 },
			in:      `{"op":"upsert","item_id":"i-1","title":"T","attributes":{"b":"xyz","a":"xyz"},` + ua + `}`,
			wantErr: "catalog.attributes.a: 3 bytes exceeds max 2"},
		{name: "category entry blank", in: `{"op":"upsert","item_id":"i-1","title":"T","category_path":["a","\u3000"],` + ua + `}`,
			wantErr: "catalog.category_path[1]: blank"},
		{name: "upsert with op in capitals", in: `{"op":"UPSERT","item_id":"i-1",` + ua + `}`,
			wantErr: `catalog.op: unknown value "UPSERT" (want upsert, delete)`},
		{name: "NUL in a delete's item_id", in: `{"op":"delete","item_id":"i-1\u0000",` + ua + `}`,
			wantErr: "catalog.item_id: control character U+0000 at byte 3"},
		{name: "line break in a description is free text", in: `{"op":"upsert","item_id":"i-1","title":"T","description":"a\nb",` + ua + `}`,
			want: CatalogChange{Op: OpUpsert, ItemID: "i-1", Title: "T", Description: "a\nb", UpdatedAt: updated}},
		{name: "long unknown value is clipped", in: `{"op":"` + strings.Repeat("x", 100) + `"}`,
			wantErr: `catalog.op: unknown value "` + strings.Repeat("x", 64) + `..." (want upsert, delete)`},
	})
}

// TestDecodeCatalogRecord: a record with a value decodes as DecodeCatalog;
// a tombstone is a delete of the item its key names at the record's
// timestamp, and a bad key or timestamp is rejected with a reason.
func TestDecodeCatalogRecord(t *testing.T) {
	ts := at("2025-06-01T11:30:00.123Z")
	cases := []struct {
		name       string
		key, value []byte
		ts         time.Time
		want       CatalogChange
		wantErr    string
	}{
		{name: "null value deletes the keyed item", key: []byte("i-1"), ts: ts,
			want: CatalogChange{Op: OpDelete, ItemID: "i-1", UpdatedAt: ts}},
		{name: "an empty value is no tombstone", key: []byte("i-1"), value: []byte{}, ts: ts, wantErr: "malformed JSON at offset 0: unexpected end of JSON input"},
		{name: "a value is decoded, whatever the key", key: []byte("other"), ts: ts,
			value: []byte(`{"op":"upsert","item_id":"i-1","title":"T","updated_at":"2025-06-01T11:00:00Z"}`),
			want:  CatalogChange{Op: OpUpsert, ItemID: "i-1", Title: "T", UpdatedAt: at("2025-06-01T11:00:00Z")}},
		{name: "an invalid value is still rejected", key: []byte("i-1"), value: []byte(`{"op":"delete"`), ts: ts,
			wantErr: "malformed JSON at offset 14: unexpected end of JSON input after object field value"},
		{name: "tombstone without a key", ts: ts,
			wantErr: "tombstone.key: missing (a tombstone deletes the item its key names)"},
		{name: "tombstone with a blank key", key: []byte(" "), ts: ts, wantErr: "tombstone.key: blank"},
		{name: "tombstone with a NUL in its key", key: []byte("i-\x001"), ts: ts,
			wantErr: "tombstone.key: control character U+0000 at byte 2"},
		{name: "tombstone with invalid UTF-8 in its key", key: []byte("i-\xff"), ts: ts,
			wantErr: "tombstone.key: invalid UTF-8 at byte 2"},
		{name: "tombstone with an oversize key", key: []byte(strings.Repeat("k", 257)), ts: ts,
			wantErr: "tombstone.key: 257 bytes exceeds max 256"},
		{name: "tombstone without a timestamp", key: []byte("i-1"), wantErr: "tombstone.timestamp: missing"},
		{name: "tombstone from the future", key: []byte("i-1"), ts: goldenNow.Add(10 * time.Minute),
			wantErr: "tombstone.timestamp: 10m0s in the future (max skew 5m0s)"},
		{name: "years-old tombstone", key: []byte("i-1"), ts: at("2001-01-01T00:00:00Z"),
			want: CatalogChange{Op: OpDelete, ItemID: "i-1", UpdatedAt: at("2001-01-01T00:00:00Z")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCatalogRecord(tc.key, tc.value, tc.ts, goldenNow, DefaultLimits())
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %+v, %v; want error %q", got, err, tc.wantErr)
				}
				checkRejection(t, err)
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if err := got.Validate(goldenNow, DefaultLimits()); err != nil {
				t.Errorf("decoded change fails Validate: %v", err)
			}
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	decode := func(b []byte, l Limits) (RecoRequest, error) { return DecodeRequest(b, goldenNow, l) }
	runDecodeCases(t, decode, []decodeCase[RecoRequest]{
		{name: "for_user", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":10}`,
			want: RecoRequest{RequestID: "r-1", Kind: KindForUser, UserID: "u-1", K: 10}},
		{name: "similar_items with exclude", in: `{"request_id":"r-1","kind":"similar_items","item_id":"i-1","k":5,"exclude":["i-1","i-2"]}`,
			want: RecoRequest{RequestID: "r-1", Kind: KindSimilarItems, ItemID: "i-1", K: 5, Exclude: []string{"i-1", "i-2"}}},
		{name: "search with filters and deadline",
			in: `{"request_id":"r-1","kind":"search","query":"red","k":1000,"deadline":"2025-06-01T12:00:01Z",` +
				`"filters":{"category":"Shoes","brand":"Acme","min_price":0,"max_price":50.5,"in_stock":false}}`,
			want: RecoRequest{RequestID: "r-1", Kind: KindSearch, Query: "red", K: 1000, Deadline: ptr(at("2025-06-01T12:00:01Z")),
				Filters: Filters{Category: "Shoes", Brand: "Acme", MinPrice: ptr(0.0), MaxPrice: ptr(50.5), InStock: ptr(false)}}},
		{name: "max_deadline 0 allows any deadline", lim: func(l *Limits) { l.MaxDeadline = 0 },
			in:   `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1,"deadline":"2030-01-01T00:00:00Z"}`,
			want: RecoRequest{RequestID: "r-1", Kind: KindForUser, UserID: "u-1", K: 1, Deadline: ptr(at("2030-01-01T00:00:00Z"))}},

		{name: "k over a smaller max_k", lim: func(l *Limits) { l.MaxK = 50 },
			in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":51}`, wantErr: "request.k: 51 out of range 1..50"},
		{name: "negative k", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":-1}`,
			wantErr: "request.k: -1 out of range 1..1000"},
		{name: "k of 1e2", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1e2}`,
			want: RecoRequest{RequestID: "r-1", Kind: KindForUser, UserID: "u-1", K: 100}},
		{name: "k fraction", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":2.5}`, wantErr: "request.k: 2.5 is not an integer"},
		{name: "k null", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":null}`, wantErr: "request.k: missing"},
		{name: "too many excluded", lim: func(l *Limits) { l.MaxExclude = 1 },
			in:      `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1,"exclude":["a","b"]}`,
			wantErr: "request.exclude: 2 entries exceeds max 1"},
		{name: "excluded id empty", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1,"exclude":[""]}`,
			wantErr: "request.exclude[0]: empty"},
		{name: "control character in request_id", in: `{"request_id":"r\u0007","kind":"for_user","user_id":"u-1","k":1}`,
			wantErr: "request.request_id: control character U+0007 at byte 1"},
		{name: "control character in item_id", in: `{"request_id":"r-1","kind":"similar_items","item_id":"i\u001f1","k":1}`,
			wantErr: "request.item_id: control character U+001F at byte 1"},
		{name: "control character in an excluded id", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1,"exclude":["i-1","i-2\u0000"]}`,
			wantErr: "request.exclude[1]: control character U+0000 at byte 3"},
		{name: "negative max_price", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1,"filters":{"max_price":-1}}`,
			wantErr: "request.filters.max_price: -1 is negative"},
		{name: "filters an array", in: `{"request_id":"r-1","kind":"for_user","user_id":"u-1","k":1,"filters":[]}`,
			wantErr: "request.filters: wrong type: got array, want object"},
	})
}

func TestDecodeReply(t *testing.T) {
	runDecodeCases(t, DecodeReply, []decodeCase[RecoReply]{
		{name: "items", in: `{"request_id":"r-1","items":[{"item_id":"i-1","score":0.5,"reason":"popular"},{"item_id":"i-2","score":-1e-3}],"model_version":"m-1","fallback":true}`,
			want: RecoReply{RequestID: "r-1", Items: []ReplyItem{{ItemID: "i-1", Score: 0.5, Reason: "popular"}, {ItemID: "i-2", Score: -1e-3}}, ModelVersion: "m-1", Fallback: true}},
		{name: "empty items", in: `{"request_id":"r-1","items":[]}`, want: RecoReply{RequestID: "r-1", Items: []ReplyItem{}}},
		{name: "error reply without items", in: `{"request_id":"r-1","error":"deadline exceeded"}`,
			want: RecoReply{RequestID: "r-1", Error: "deadline exceeded"}},

		{name: "more items than max_k", lim: func(l *Limits) { l.MaxK = 1 },
			in: `{"request_id":"r-1","items":[{"item_id":"a"},{"item_id":"b"}]}`, wantErr: "reply.items: 2 entries exceeds max 1"},
		{name: "reason too long", lim: func(l *Limits) { l.MaxTextLen = 3 },
			in: `{"request_id":"r-1","items":[{"item_id":"a","reason":"long"}]}`, wantErr: "reply.items[0].reason: 4 bytes exceeds max 3"},
		{name: "item not an object", in: `{"request_id":"r-1","items":["a"]}`,
			wantErr: "reply.items[0]: wrong type: got string, want object"},
		{name: "control character in an item_id", in: `{"request_id":"r-1","items":[{"item_id":"a"},{"item_id":"b\u0000"}]}`,
			wantErr: "reply.items[1].item_id: control character U+0000 at byte 1"},
		{name: "truncated", in: `{"request_id":"r-1","items":[`, wantErr: "malformed JSON at offset 29: unexpected end of JSON input"},
	})
}

// TestValidate covers what only a Go value can hold: NaN, invalid UTF-8,
// years and offsets RFC 3339 cannot write, map order.
func TestValidate(t *testing.T) {
	lim := DefaultLimits()
	click := ClickEvent{EventID: "e-1", Type: EventView, UserID: "u-1", ItemID: "i-1", Timestamp: goldenNow}
	upsert := CatalogChange{Op: OpUpsert, ItemID: "i-1", Title: "T", UpdatedAt: goldenNow}
	request := RecoRequest{RequestID: "r-1", Kind: KindForUser, UserID: "u-1", K: 1}
	tests := []struct {
		name    string
		edit    func() error
		wantErr string
	}{
		{"valid click", func() error { e := click; return e.Validate(goldenNow, lim) }, ""},
		{"valid upsert", func() error { c := upsert; return c.Validate(goldenNow, lim) }, ""},
		{"valid request", func() error { r := request; return r.Validate(goldenNow, lim) }, ""},
		{"valid reply", func() error { r := RecoReply{RequestID: "r-1"}; return r.Validate(lim) }, ""},
		{"NaN price", func() error { e := click; e.Price = math.NaN(); return e.Validate(goldenNow, lim) },
			"event.price: not a finite number"},
		{"infinite score", func() error {
			r := RecoReply{RequestID: "r-1", Items: []ReplyItem{{ItemID: "i", Score: math.Inf(-1)}}}
			return r.Validate(lim)
		}, "reply.items[0].score: not a finite number"},
		{"invalid UTF-8", func() error { e := click; e.UserID = "u-\xff"; return e.Validate(goldenNow, lim) },
			"event.user_id: invalid UTF-8 at byte 2"},
		{"NUL in an id", func() error { e := click; e.ItemID = "i\x00"; return e.Validate(goldenNow, lim) },
			"event.item_id: control character U+0000 at byte 1"},
		{"invalid UTF-8 in an excluded id", func() error { r := request; r.Exclude = []string{"ok", "\xc3("}; return r.Validate(goldenNow, lim) },
			"request.exclude[1]: invalid UTF-8 at byte 0"},
		{"year past 9999", func() error {
			c := upsert
			c.UpdatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			return c.Validate(goldenNow, lim)
		},
			"catalog.updated_at: year 10000 out of range 0..9999"},
		{"negative year", func() error {
			c := upsert
			c.UpdatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
			return c.Validate(goldenNow, lim)
		},
			"catalog.updated_at: year -1 out of range 0..9999"},
		{"offset of a day", func() error {
			e := click
			e.Timestamp = goldenNow.In(time.FixedZone("", 24*3600))
			return e.Validate(goldenNow, lim)
		}, "event.timestamp: zone offset out of range -23:59..+23:59"},
		{"zero k is out of range, not missing", func() error { r := request; r.K = 0; return r.Validate(goldenNow, lim) },
			"request.k: 0 out of range 1..1000"},
		{"smallest bad attribute key is reported", func() error {
			c := upsert
			c.Attributes = map[string]string{"z": strings.Repeat("v", 2000), "m": "ok", "c": strings.Repeat("v", 2000), "d": strings.Repeat("v", 2000)}
			return c.Validate(goldenNow, lim)
		}, "catalog.attributes.c: 2000 bytes exceeds max 1024"},
		{"min_price above max_price", func() error {
			r := request
			r.Filters = Filters{MinPrice: ptr(2.0), MaxPrice: ptr(1.5)}
			return r.Validate(goldenNow, lim)
		}, "request.filters.min_price: 2 exceeds max_price 1.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 { // map order must not matter
				err := tc.edit()
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					continue
				}
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				checkRejection(t, err)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("DefaultLimits: %v", err)
	}
	lim := DefaultLimits()
	lim.MaxBytes, lim.MaxAge, lim.MaxExclude = 0, -time.Second, -1
	err := lim.Validate()
	want := "max_bytes must be > 0\nmax_age must be >= 0\nmax_exclude must be > 0"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if errors.Is(err, ErrInvalid) {
		t.Error("a bad limit is not an invalid record")
	}
	zero := Limits{}.Validate()
	if zero == nil || strings.Count(zero.Error(), "\n") != 9 {
		t.Errorf("zero Limits should fail its 10 positive limits, got %v", zero)
	}
}

func TestErrorMessages(t *testing.T) {
	fe := &FieldError{Field: "event.user_id", Reason: "missing"}
	se := &SyntaxError{Offset: 17, Msg: "unexpected end of JSON input"}
	for err, want := range map[error]string{fe: "event.user_id: missing", se: "malformed JSON at offset 17: unexpected end of JSON input"} {
		if err.Error() != want || !errors.Is(err, ErrInvalid) {
			t.Errorf("%#v: Error() = %q, want %q wrapping ErrInvalid", err, err, want)
		}
	}
}

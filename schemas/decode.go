package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// DecodeClick decodes and validates a shop.clickstream.v1 record. price and
// quantity must be present for add_to_cart and purchase.
//
// Each decoder checks one record's value against lim and its contract, and
// returns the record, or the zero value and an error wrapping ErrInvalid: a
// *SyntaxError for malformed JSON, a *FieldError otherwise. Unknown fields
// are ignored, field names match case-sensitively and an explicit null
// reads as an absent field. now is the reference for timestamp checks. The
// decoders never panic and are safe for concurrent use.
func DecodeClick(data []byte, now time.Time, lim Limits) (ClickEvent, error) {
	// Shallower fields shadow the embedded ones, so the pointers tell
	// whether price and quantity were present.
	var w struct {
		ClickEvent
		Price    *float64 `json:"price"`
		Quantity *float64 `json:"quantity"` // JSON Schema's integer: 2, 2.0, 2e0
	}
	if err := parse(data, lim, "event", &w, "quantity"); err != nil {
		return ClickEvent{}, err
	}
	e := w.ClickEvent
	if w.Price != nil {
		e.Price = *w.Price
	}
	if w.Quantity != nil {
		q, err := integer(*w.Quantity, "event.quantity")
		if err != nil {
			return ClickEvent{}, err
		}
		e.Quantity = q
	}
	if err := e.validate(now, lim, w.Price != nil, w.Quantity != nil); err != nil {
		return ClickEvent{}, err
	}
	return e, nil
}

// DecodeCatalog decodes and validates a shop.catalog.v1 record, as
// DecodeClick describes.
func DecodeCatalog(data []byte, now time.Time, lim Limits) (CatalogChange, error) {
	var ch CatalogChange
	if err := parse(data, lim, "catalog", &ch); err != nil {
		return CatalogChange{}, err
	}
	if err := ch.Validate(now, lim); err != nil {
		return CatalogChange{}, err
	}
	return ch, nil
}

// DecodeCatalogRecord decodes and validates a whole shop.catalog.v1 record:
// its key, value and timestamp. A record with a value (an empty one too,
// which does not decode) is DecodeCatalog's.
//
// A record with a null value (a tombstone, the delete marker of a compacted
// topic) is a delete
// of the item its key names, made at the record's timestamp: it decodes to
// {Op: OpDelete, ItemID: key, UpdatedAt: ts}. The key is checked as an
// item_id and ts as an updated_at; a rejection names "tombstone.key" or
// "tombstone.timestamp". The timestamp orders the delete against the item's
// changes as updated_at does, so a tombstone must not be stamped before the
// change it deletes (a producer's CreateTime, the default, is not).
func DecodeCatalogRecord(key, value []byte, ts, now time.Time, lim Limits) (CatalogChange, error) {
	// Only a null value is a tombstone (what compaction deletes by); an
	// empty one is a producer's bug and is rejected by the decoder.
	if value != nil {
		return DecodeCatalog(value, now, lim)
	}
	c := checker{record: "tombstone", lim: lim}
	id := string(key)
	reason := c.id(id, true)
	if id == "" {
		reason = "missing (a tombstone deletes the item its key names)"
	}
	c.check("key", reason)
	c.check("timestamp", need(!ts.IsZero(), timeReason(ts, now, lim.MaxFutureSkew, 0, "skew")))
	if err := c.result(); err != nil {
		return CatalogChange{}, err
	}
	return CatalogChange{Op: OpDelete, ItemID: id, UpdatedAt: ts}, nil
}

// DecodeRequest decodes and validates a reco.requests.v1 record, as
// DecodeClick describes.
func DecodeRequest(data []byte, now time.Time, lim Limits) (RecoRequest, error) {
	var w struct {
		RecoRequest
		K *float64 `json:"k"` // as quantity in DecodeClick
	}
	if err := parse(data, lim, "request", &w, "k"); err != nil {
		return RecoRequest{}, err
	}
	r := w.RecoRequest
	if w.K != nil {
		k, err := integer(*w.K, "request.k")
		if err != nil {
			return RecoRequest{}, err
		}
		r.K = k
	}
	if err := r.validate(now, lim, w.K != nil); err != nil {
		return RecoRequest{}, err
	}
	return r, nil
}

// DecodeReply decodes and validates a recommendation reply, as DecodeClick
// describes.
func DecodeReply(data []byte, lim Limits) (RecoReply, error) {
	var r RecoReply
	if err := parse(data, lim, "reply", &r); err != nil {
		return RecoReply{}, err
	}
	if err := r.Validate(lim); err != nil {
		return RecoReply{}, err
	}
	return r, nil
}

// parse decodes one JSON object from data into v, a pointer to a struct.
// record prefixes field paths in errors; integers names the fields that v
// decodes as float64 but the contract calls integers.
func parse(data []byte, lim Limits, record string, v any, integers ...string) error {
	if len(data) > lim.MaxBytes {
		return &FieldError{Field: "record", Reason: fmt.Sprintf("%d bytes exceeds max %d", len(data), lim.MaxBytes)}
	}
	if !utf8.Valid(data) {
		return &FieldError{Field: "record", Reason: fmt.Sprintf("invalid UTF-8 at offset %d", invalidUTF8(data))}
	}
	rest, err := json.Parse(data, v, json.DontMatchCaseInsensitiveStructFields)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := "record"
			if te.Field != "" {
				field = record + "." + fieldPath(te.Field)
			}
			return &FieldError{Field: field, Reason: typeReason(te, slices.Contains(integers, te.Field))}
		}
		// "json: <problem>: <start of the rest>"; Offset says where.
		msg, _, _ := strings.Cut(strings.TrimPrefix(err.Error(), "json: "), ": ")
		return &SyntaxError{Offset: len(data) - len(rest), Msg: strings.Map(printable, msg)}
	}
	if len(rest) > 0 {
		return &SyntaxError{Offset: len(data) - len(rest), Msg: "data after the top-level value"}
	}
	// A struct takes null without complaint; every other non-object fails
	// above.
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return &FieldError{Field: "record", Reason: "wrong type: got null, want object"}
	}
	return nil
}

// integer converts a JSON number to an int the way JSON Schema sees
// integers: 2, 2.0 and 2e0 alike. field names f in an error.
func integer(f float64, field string) (int, error) {
	const exact = 1 << 53 // beyond, float64 skips integers
	switch {
	case f != math.Trunc(f):
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%g is not an integer", f)}
	case f < -exact || f > exact:
		return 0, &FieldError{Field: field, Reason: fmt.Sprintf("%g out of range", f)}
	}
	return int(f), nil
}

// printable replaces control characters, which the decoder's messages
// quote raw.
func printable(r rune) rune {
	if unicode.IsControl(r) {
		return '?'
	}
	return r
}

// invalidUTF8 returns the offset of the first invalid UTF-8 sequence in b.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// fieldPath turns the decoder's dotted path ("items.3.score") into the path
// of a FieldError ("items[3].score").
func fieldPath(p string) string {
	var b strings.Builder
	for i, seg := range strings.Split(p, ".") {
		switch _, err := strconv.ParseUint(seg, 10, 64); {
		case i > 0 && err == nil:
			b.WriteString("[" + seg + "]")
			continue
		case i > 0:
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

var timeType = reflect.TypeFor[time.Time]()

// typeReason explains an UnmarshalTypeError in JSON terms; integer says the
// field wants an integer whatever its Go type.
func typeReason(te *json.UnmarshalTypeError, integer bool) string {
	// segmentio/encoding reports an integer overflow as "number N
	// overflows" and any other mismatch as the quoted start of the value.
	if strings.HasPrefix(te.Value, "number ") {
		return "number out of range"
	}
	raw, err := strconv.Unquote(te.Value)
	if err != nil {
		raw = te.Value
	}
	got, want := jsonKind(raw), jsonType(te.Type)
	if integer {
		want = "integer"
	}
	switch {
	case got == "string" && want == "timestamp":
		return "not an RFC 3339 timestamp"
	case got == want, got == "number" && want == "integer":
		return "number out of range"
	case want == "timestamp":
		want = "string"
	}
	return "wrong type: got " + got + ", want " + want
}

// jsonKind names the kind of the JSON value that raw starts with.
func jsonKind(raw string) string {
	if raw == "" {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	}
	return "invalid value"
}

// jsonType names the JSON type that Go type t decodes from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "timestamp"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

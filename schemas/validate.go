package schemas

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	catalogOps = []CatalogOp{OpUpsert, OpDelete}
	recoKinds  = []RecoKind{KindForUser, KindSimilarItems, KindSearch}
)

// Validate reports the first field of e that breaks the shop.clickstream.v1
// contract, as a *FieldError wrapping ErrInvalid. An empty string or a zero
// time counts as missing.
func (e *ClickEvent) Validate(now time.Time, lim Limits) error {
	return e.validate(now, lim, true, true)
}

// validate is Validate for a decoded event, which knows whether price and
// quantity were present.
func (e *ClickEvent) validate(now time.Time, lim Limits, priceSet, quantitySet bool) error {
	c := checker{record: "event", lim: lim}
	commerce := e.Type == EventAddToCart || e.Type == EventPurchase
	minQuantity := 0
	if commerce {
		minQuantity = 1
	}
	c.check("event_id", c.id(e.EventID, true))
	c.check("type", oneOf(e.Type, EventTypes))
	c.check("user_id", c.id(e.UserID, true))
	c.check("session_id", c.id(e.SessionID, false))
	c.check("item_id", c.id(e.ItemID, e.Type != EventSearch))
	c.check("query", c.text(e.Query, lim.MaxTextLen, e.Type == EventSearch))
	c.check("price", need(priceSet || !commerce, priceReason(e.Price)))
	c.check("quantity", need(quantitySet || !commerce, rangeReason(e.Quantity, minQuantity, lim.MaxQuantity)))
	c.check("timestamp", need(!e.Timestamp.IsZero(), timeReason(e.Timestamp, now, lim.MaxFutureSkew, lim.MaxAge, "skew")))
	c.check("context.device", c.text(e.Context.Device, lim.MaxNameLen, false))
	c.check("context.locale", c.text(e.Context.Locale, lim.MaxNameLen, false))
	c.check("context.page", c.text(e.Context.Page, lim.MaxTextLen, false))
	c.check("context.reco_request_id", c.id(e.Context.RecoRequestID, false))
	return c.result()
}

// Validate reports the first field of ch that breaks the shop.catalog.v1
// contract, as a *FieldError wrapping ErrInvalid. A delete is checked for
// op, item_id and updated_at only.
func (ch *CatalogChange) Validate(now time.Time, lim Limits) error {
	c := checker{record: "catalog", lim: lim}
	c.check("op", oneOf(ch.Op, catalogOps))
	c.check("item_id", c.id(ch.ItemID, true))
	c.check("updated_at", need(!ch.UpdatedAt.IsZero(), timeReason(ch.UpdatedAt, now, lim.MaxFutureSkew, 0, "skew")))
	if ch.Op != OpUpsert {
		return c.result()
	}
	c.check("title", c.text(ch.Title, lim.MaxTextLen, true))
	c.check("description", c.text(ch.Description, lim.MaxDescriptionLen, false))
	c.check("category_path", countReason(len(ch.CategoryPath), lim.MaxCategoryDepth))
	c.each("category_path", ch.CategoryPath, func(v string) string { return strReason(v, lim.MaxNameLen, false, true) })
	c.check("brand", c.text(ch.Brand, lim.MaxNameLen, false))
	c.check("price", priceReason(ch.Price))
	c.check("currency", currencyReason(ch.Currency, ch.Price))
	c.check("attributes", countReason(len(ch.Attributes), lim.MaxAttributes))
	c.attributes(ch.Attributes)
	return c.result()
}

// Validate reports the first field of r that breaks the reco.requests.v1
// contract, as a *FieldError wrapping ErrInvalid. A deadline in the past is
// valid: the request is answered with an error reply.
func (r *RecoRequest) Validate(now time.Time, lim Limits) error {
	return r.validate(now, lim, true)
}

// validate is Validate for a decoded request, which knows whether k was
// present.
func (r *RecoRequest) validate(now time.Time, lim Limits, kSet bool) error {
	c := checker{record: "request", lim: lim}
	c.check("request_id", c.id(r.RequestID, true))
	c.check("kind", oneOf(r.Kind, recoKinds))
	c.check("user_id", c.id(r.UserID, r.Kind == KindForUser))
	c.check("item_id", c.id(r.ItemID, r.Kind == KindSimilarItems))
	c.check("query", c.text(r.Query, lim.MaxTextLen, r.Kind == KindSearch))
	c.check("k", need(kSet, rangeReason(r.K, 1, lim.MaxK)))
	f := &r.Filters
	c.check("filters.category", c.text(f.Category, lim.MaxNameLen, false))
	c.check("filters.brand", c.text(f.Brand, lim.MaxNameLen, false))
	if f.MinPrice != nil {
		c.check("filters.min_price", priceReason(*f.MinPrice))
	}
	if f.MaxPrice != nil {
		c.check("filters.max_price", priceReason(*f.MaxPrice))
	}
	if f.MinPrice != nil && f.MaxPrice != nil && *f.MinPrice > *f.MaxPrice {
		c.check("filters.min_price", fmt.Sprintf("%g exceeds max_price %g", *f.MinPrice, *f.MaxPrice))
	}
	c.check("exclude", countReason(len(r.Exclude), lim.MaxExclude))
	c.each("exclude", r.Exclude, func(v string) string { return c.id(v, false) })
	if r.Deadline != nil {
		ahead := lim.MaxDeadline
		if ahead == 0 {
			ahead = math.MaxInt64
		}
		c.check("deadline", timeReason(*r.Deadline, now, ahead, 0, "deadline"))
	}
	return c.result()
}

// Validate reports the first field of r that breaks the reply contract, as
// a *FieldError wrapping ErrInvalid.
func (r *RecoReply) Validate(lim Limits) error {
	c := checker{record: "reply", lim: lim}
	c.check("request_id", c.id(r.RequestID, true))
	c.check("items", countReason(len(r.Items), lim.MaxK))
	for i := range r.Items {
		it := &r.Items[i]
		field, reason := "item_id", c.id(it.ItemID, true)
		if reason == "" {
			field, reason = "score", finiteReason(it.Score)
		}
		if reason == "" {
			field, reason = "reason", c.text(it.Reason, lim.MaxTextLen, false)
		}
		if reason != "" {
			c.check(fmt.Sprintf("items[%d].%s", i, field), reason)
			break
		}
	}
	c.check("model_version", c.text(r.ModelVersion, lim.MaxNameLen, false))
	c.check("error", c.text(r.Error, lim.MaxTextLen, false))
	return c.result()
}

// checker keeps the first rejection of a record's fields. Its reason
// helpers return "" for a good value, so the happy path formats nothing.
type checker struct {
	record string // role prefix of field paths: "event", "request"
	lim    Limits
	err    *FieldError
}

// check records reason against field unless reason is "" or an earlier
// field failed.
func (c *checker) check(field, reason string) {
	if c.err == nil && reason != "" {
		c.err = &FieldError{Field: c.record + "." + field, Reason: reason}
	}
}

func (c *checker) result() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// id checks an identifier: at most MaxIDLen bytes, never blank and free of
// control characters. An id travels into record keys, log lines, store keys
// and dead-letter headers, where a NUL, a line break or an escape character
// truncates, splits or garbles it.
func (c *checker) id(v string, required bool) string {
	if r := strReason(v, c.lim.MaxIDLen, required, true); r != "" {
		return r
	}
	return controlReason(v)
}

// text checks free text of at most limit bytes; required text must not be
// blank.
func (c *checker) text(v string, limit int, required bool) string {
	return strReason(v, limit, required, required)
}

// each checks every entry of a list with reason; an entry must not be
// empty.
func (c *checker) each(field string, vs []string, reason func(string) string) {
	for i, v := range vs {
		r := "empty"
		if v != "" {
			r = reason(v)
		}
		if r != "" {
			c.check(fmt.Sprintf("%s[%d]", field, i), r)
			return
		}
	}
}

// attributes checks catalog attributes, reporting the smallest bad key so
// that the error does not depend on map order.
func (c *checker) attributes(attrs map[string]string) {
	var badKey, field, reason string
	for k, v := range attrs {
		f, r := "attributes", ""
		switch kr := strReason(k, c.lim.MaxNameLen, false, true); {
		case k == "":
			r = "empty key"
		case kr != "":
			r = fmt.Sprintf("key %q %s", clip(k), kr)
		default:
			f, r = "attributes."+k, strReason(v, c.lim.MaxTextLen, false, false)
		}
		if r != "" && (reason == "" || k < badKey) {
			badKey, field, reason = k, f, r
		}
	}
	c.check(field, reason)
}

// need returns "missing" unless set, and reason otherwise.
func need(set bool, reason string) string {
	if !set {
		return "missing"
	}
	return reason
}

// strReason checks a string of at most limit bytes. Empty is missing when
// required and fine otherwise; nonBlank rejects white space only.
func strReason(v string, limit int, required, nonBlank bool) string {
	switch {
	case v == "":
		if required {
			return "missing"
		}
	case !utf8.ValidString(v):
		return fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8([]byte(v)))
	case len(v) > limit:
		return fmt.Sprintf("%d bytes exceeds max %d", len(v), limit)
	case nonBlank && strings.TrimSpace(v) == "":
		return "blank"
	}
	return ""
}

// controlReason rejects the first control character of v (unicode.IsControl:
// U+0000..U+001F, U+007F..U+009F), naming it and its byte offset.
func controlReason(v string) string {
	for i, r := range v {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U at byte %d", r, i)
		}
	}
	return ""
}

func oneOf[T ~string](v T, valid []T) string {
	if v == "" {
		return "missing"
	}
	if slices.Contains(valid, v) {
		return ""
	}
	want := make([]string, len(valid))
	for i, w := range valid {
		want[i] = string(w)
	}
	return fmt.Sprintf("unknown value %q (want %s)", clip(string(v)), strings.Join(want, ", "))
}

func rangeReason(v, lo, hi int) string {
	if v < lo || v > hi {
		return fmt.Sprintf("%d out of range %d..%d", v, lo, hi)
	}
	return ""
}

func countReason(n, limit int) string {
	if n > limit {
		return fmt.Sprintf("%d entries exceeds max %d", n, limit)
	}
	return ""
}

func finiteReason(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "not a finite number"
	}
	return ""
}

func priceReason(v float64) string {
	if r := finiteReason(v); r != "" {
		return r
	}
	if v < 0 {
		return fmt.Sprintf("%g is negative", v)
	}
	return ""
}

// currencyReason checks an ISO 4217 style code: three upper-case ASCII
// letters, required when the price is above zero.
func currencyReason(cur string, price float64) string {
	if cur == "" {
		if price > 0 {
			return "missing (required when price > 0)"
		}
		return ""
	}
	if len(cur) != 3 || strings.TrimLeft(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return fmt.Sprintf("%q is not three upper-case letters (ISO 4217)", clip(cur))
	}
	return ""
}

// timeReason checks that t can be written as RFC 3339 and lies at most ahead
// after now and, when age > 0, at most age before it. what names the ahead
// limit in the message.
func timeReason(t, now time.Time, ahead, age time.Duration, what string) string {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Sprintf("year %d out of range 0..9999", y)
	}
	if _, off := t.Zone(); off <= -24*60*60 || off >= 24*60*60 {
		return "zone offset out of range -23:59..+23:59"
	}
	if d := t.Sub(now); d > ahead {
		return fmt.Sprintf("%v in the future (max %s %v)", d.Round(time.Millisecond), what, ahead)
	}
	if d := now.Sub(t); age > 0 && d > age {
		return fmt.Sprintf("%v old (max age %v)", d.Round(time.Millisecond), age)
	}
	return ""
}

// clip shortens a value echoed in an error message.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

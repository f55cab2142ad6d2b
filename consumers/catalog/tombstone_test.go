package catalog

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// tombstoneNow is the clock of the tombstone tests; their changes are a
// few minutes older.
var tombstoneNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func tombstoneAt(min int) time.Time { return time.Date(2026, 11, 28, 11, min, 0, 0, time.UTC) }

// upsertRecord is the record of an upsert of item id, made at min and
// produced then.
func upsertRecord(t *testing.T, id, title string, min int) pipeline.Record {
	t.Helper()
	v, err := json.Marshal(schemas.CatalogChange{Op: schemas.OpUpsert, ItemID: id, Title: title, InStock: true, UpdatedAt: tombstoneAt(min)})
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Record{Topic: schemas.TopicCatalog, Key: []byte(id), Value: v, Timestamp: tombstoneAt(min)}
}

// tombstone is the record that deletes key at min: a null value.
func tombstone(key string, min int) pipeline.Record {
	return pipeline.Record{Topic: schemas.TopicCatalog, Key: []byte(key), Timestamp: tombstoneAt(min)}
}

// TestSinkTombstones: the counting sink reads a tombstone as a delete of
// its key's item and rejects one whose key is no item id, with the reason.
func TestSinkTombstones(t *testing.T) {
	cases := []struct {
		name   string
		rec    pipeline.Record
		reason string // "" = counted as a delete
	}{
		{"null value", tombstone("i-1", 1), ""},
		{"empty value (no tombstone: only null is)", pipeline.Record{Key: []byte("i-1"), Value: []byte{}, Timestamp: tombstoneAt(1)}, "malformed JSON"},
		{"no key", tombstone("", 1), "tombstone.key: missing"},
		{"blank key", tombstone(" \t", 1), "tombstone.key: blank"},
		{"NUL in the key", tombstone("i-\x001", 1), "tombstone.key: control character U+0000 at byte 2"},
		{"no timestamp", pipeline.Record{Key: []byte("i-1")}, "tombstone.timestamp: missing"},
		{"timestamp from the future", pipeline.Record{Key: []byte("i-1"), Timestamp: tombstoneNow.Add(time.Hour)},
			"tombstone.timestamp: 1h0m0s in the future"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tally := NewTally(nil)
			res, err := NewSink(schemas.DefaultLimits(), func() time.Time { return tombstoneNow }, tally).
				Write(context.Background(), []pipeline.Record{tc.rec})
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				if len(res.Rejected) != 0 || tally.Snapshot()["delete"] != 1 {
					t.Fatalf("rejected %v, tally %v; want counted as a delete", res.Rejected, tally.Snapshot())
				}
				return
			}
			if len(res.Rejected) != 1 || !strings.HasPrefix(res.Rejected[0].Err.Error(), tc.reason) || tally.Total() != 0 {
				t.Fatalf("rejected %v, tally %v; want one rejection %q", res.Rejected, tally.Snapshot(), tc.reason)
			}
		})
	}
}

// TestIndexingSinkTombstone: through the indexing sink with analytics on, a
// tombstone after an upsert removes the item from the vector store and
// lands an items delete row stamped with the record's timestamp; a
// tombstone in the same batch as the upsert wins a tie (the later record);
// one stamped before the stored change is stale like any older change; a
// tombstone without a usable key is rejected and deletes nothing.
func TestIndexingSinkTombstone(t *testing.T) {
	ix, store, tally := indexer(t)
	ctx := context.Background()
	an := &itemRows{}
	sink := NewIndexingSink(schemas.DefaultLimits(), func() time.Time { return tombstoneNow }, ix)
	sink.Handle = RecordItems(sink.Handle, an)
	write := func(recs ...pipeline.Record) []string {
		t.Helper()
		res, err := sink.Write(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, r := range res.Rejected {
			reasons = append(reasons, r.Err.Error())
		}
		return reasons
	}
	present := func() []string {
		t.Helper()
		pts, err := store.Get(ctx, ItemsAlias, []string{"a", "b", "c", "d"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range pts {
			ids = append(ids, p.ID)
		}
		return ids
	}

	if rej := write(upsertRecord(t, "a", "wireless headphones", 1), upsertRecord(t, "b", "organic green tea", 1),
		upsertRecord(t, "d", "trail running shoes", 5)); rej != nil {
		t.Fatalf("upserts rejected: %v", rej)
	}
	rej := write(tombstone("a", 2), tombstone("", 2), tombstone("b\x00", 2),
		upsertRecord(t, "c", "ceramic teapot", 3), tombstone("c", 3), // a tie: the later record wins
		tombstone("d", 4)) // stamped before d's stored change: stale
	want := []string{
		"tombstone.key: missing (a tombstone deletes the item its key names)",
		"tombstone.key: control character U+0000 at byte 1",
	}
	if !slices.Equal(rej, want) {
		t.Fatalf("rejected %q, want %q", rej, want)
	}
	if got := present(); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("items %v after the tombstones, want [b d]", got)
	}
	if s := tally.Snapshot(); s["delete"] != 2 || s["stale"] != 1 {
		t.Fatalf("tally %v, want 2 deletes (a, c) and 1 stale (d)", s)
	}

	var rows []string
	for _, c := range an.items {
		rows = append(rows, c.ItemID+"/"+string(c.Op)+"/"+c.UpdatedAt.Format("15:04"))
	}
	// Every valid change is a row; the items table keeps each item's
	// newest by updated_at, which for a tombstone is the record's time.
	wantRows := []string{"a/upsert/11:01", "b/upsert/11:01", "d/upsert/11:05", "a/delete/11:02", "c/upsert/11:03", "c/delete/11:03", "d/delete/11:04"}
	if !slices.Equal(rows, wantRows) {
		t.Fatalf("item rows %v, want %v", rows, wantRows)
	}

	// Redelivery of the tombstone changes nothing.
	if rej := write(tombstone("a", 2)); rej != nil {
		t.Fatalf("redelivered tombstone rejected: %v", rej)
	}
	if got := present(); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("items %v after redelivery, want [b d]", got)
	}
}

// TestReembedTombstone: re-embedding a catalog topic whose newest record
// of an item is a tombstone leaves the item out and counts no error.
func TestReembedTombstone(t *testing.T) {
	ix, store, _ := indexer(t)
	_, cl := catalogCluster(t, 1)
	ctx := context.Background()

	now := time.Now()
	var recs []*kgo.Record
	for i, id := range []string{"a", "b", "c"} {
		v, err := json.Marshal(schemas.CatalogChange{Op: schemas.OpUpsert, ItemID: id, Title: "item " + id, InStock: true,
			UpdatedAt: now.Add(time.Duration(i-10) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: schemas.TopicCatalog, Key: []byte(id), Value: v})
	}
	recs = append(recs, &kgo.Record{Topic: schemas.TopicCatalog, Key: []byte("b")}) // b's tombstone, stamped now
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rep, err := Reembed(ctx, cl, schemas.TopicCatalog, schemas.DefaultLimits(), ix, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 4 || !rep.AliasMoved {
		t.Fatalf("report %+v, want 4 records and the alias moved", rep)
	}
	pts, err := store.Get(ctx, ItemsAlias, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range pts {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []string{"a", "c"}) {
		t.Fatalf("items %v after re-embedding, want [a c] (b's tombstone deletes it)", ids)
	}
}

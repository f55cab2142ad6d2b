package catalog

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/streamrec/streamrec/consumers"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/schemas"
)

// itemRows is a pipeline.Analytics that keeps item rows in memory and fails
// while fail is set.
type itemRows struct {
	fail  error
	items []schemas.CatalogChange
}

func (a *itemRows) InsertEvents(context.Context, []schemas.ClickEvent) error { return nil }
func (a *itemRows) InsertItems(_ context.Context, c []schemas.CatalogChange) error {
	if a.fail != nil {
		return a.fail
	}
	a.items = append(a.items, c...)
	return nil
}
func (a *itemRows) InsertRecommendations(context.Context, []pipeline.ServedRecommendation) error {
	return nil
}
func (a *itemRows) Close() error { return nil }

func TestRecordItems(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	evs := []consumers.Event[schemas.CatalogChange]{
		{Value: schemas.CatalogChange{Op: schemas.OpUpsert, ItemID: "i1", Title: "Tea", UpdatedAt: at}},
		{Value: schemas.CatalogChange{Op: schemas.OpUpsert, ItemID: "i1", Title: "Green tea", UpdatedAt: at.Add(time.Second)}},
		{Value: schemas.CatalogChange{Op: schemas.OpDelete, ItemID: "i2", UpdatedAt: at}},
	}
	errIndex := errors.New("vector store down")
	errRows := errors.New("clickhouse down")
	var nextErr error
	next := func(context.Context, []consumers.Event[schemas.CatalogChange], *pipeline.Result) error {
		return nextErr
	}
	an := &itemRows{}
	h := RecordItems(next, an)

	nextErr = errIndex
	if err := h(context.Background(), evs, &pipeline.Result{}); !errors.Is(err, errIndex) || len(an.items) != 0 {
		t.Fatalf("indexing failed: err %v, %d rows written; want the error and no rows", err, len(an.items))
	}
	nextErr, an.fail = nil, errRows
	if err := h(context.Background(), evs, &pipeline.Result{}); !errors.Is(err, errRows) {
		t.Fatalf("analytics failed: err %v, want it returned (the batch is retried)", err)
	}
	an.fail = nil
	if err := h(context.Background(), evs, &pipeline.Result{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range an.items {
		got = append(got, c.ItemID+"/"+string(c.Op)+"/"+c.Title)
	}
	// Every change is a row (the items table keeps the newest by updated_at).
	if want := []string{"i1/upsert/Tea", "i1/upsert/Green tea", "i2/delete/"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

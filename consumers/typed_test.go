package consumers

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline"
)

func TestTyped(t *testing.T) {
	decode := func(data []byte) (int, error) { return strconv.Atoi(string(data)) }
	batch := []pipeline.Record{{Offset: 0, Value: []byte("1")}, {Offset: 1, Value: []byte("x")}, {Offset: 2, Value: []byte("3")}}
	boom := errors.New("store down")
	cases := []struct {
		name         string
		handle       func(context.Context, []Event[int], *pipeline.Result) error
		wantRejected []int64
		wantErr      error
		wantHandled  []int
	}{
		{
			name:         "invalid records are rejected, valid ones handled in order",
			handle:       func(context.Context, []Event[int], *pipeline.Result) error { return nil },
			wantRejected: []int64{1},
			wantHandled:  []int{1, 3},
		},
		{
			name: "handler may reject single events",
			handle: func(_ context.Context, evs []Event[int], res *pipeline.Result) error {
				res.Reject(evs[1].Record, errors.New("three is unlucky"))
				return nil
			},
			wantRejected: []int64{1, 2},
			wantHandled:  []int{1, 3},
		},
		{
			name:        "handler error fails the batch",
			handle:      func(context.Context, []Event[int], *pipeline.Result) error { return boom },
			wantErr:     boom,
			wantHandled: []int{1, 3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var handled []int
			s := Typed[int]{Decode: decode, Handle: func(ctx context.Context, evs []Event[int], res *pipeline.Result) error {
				for _, e := range evs {
					handled = append(handled, e.Value)
				}
				return tc.handle(ctx, evs, res)
			}}
			res, err := s.Write(context.Background(), batch)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil {
				var got []int64
				for _, r := range res.Rejected {
					got = append(got, r.Record.Offset)
				}
				if !slices.Equal(got, tc.wantRejected) {
					t.Errorf("rejected offsets %v, want %v", got, tc.wantRejected)
				}
			}
			if !slices.Equal(handled, tc.wantHandled) {
				t.Errorf("handled %v, want %v", handled, tc.wantHandled)
			}
		})
	}
}

// TestTypedDecodeRecord: DecodeRecord, when set, sees the whole record
// (key and timestamp of a tombstone) instead of Decode.
func TestTypedDecodeRecord(t *testing.T) {
	ts := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var got []string
	s := Typed[string]{
		Decode: func([]byte) (string, error) { return "", errors.New("Decode called") },
		DecodeRecord: func(rec pipeline.Record) (string, error) {
			if rec.Value == nil {
				return "delete " + string(rec.Key) + " at " + rec.Timestamp.Format(time.TimeOnly), nil
			}
			return "", errors.New("not a tombstone")
		},
		Handle: func(_ context.Context, evs []Event[string], _ *pipeline.Result) error {
			for _, e := range evs {
				got = append(got, e.Value)
			}
			return nil
		},
	}
	res, err := s.Write(context.Background(), []pipeline.Record{{Offset: 0, Key: []byte("i-1"), Timestamp: ts}, {Offset: 1, Value: []byte("{}")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Record.Offset != 1 || res.Rejected[0].Err.Error() != "not a tombstone" {
		t.Errorf("rejected %+v, want offset 1 with DecodeRecord's reason", res.Rejected)
	}
	if want := []string{"delete i-1 at 12:00:00"}; !slices.Equal(got, want) {
		t.Errorf("handled %q, want %q", got, want)
	}
}

func TestCounting(t *testing.T) {
	tally := NewTally("test", nil, "streamrec_test_total", "x", "kind")
	s := Counting(func(data []byte) (string, error) {
		if len(data) == 0 {
			return "", errors.New("empty")
		}
		return string(data), nil
	}, func(v string) string { return v }, tally)
	res, err := s.Write(context.Background(), []pipeline.Record{{Value: []byte("view")}, {Value: nil}, {Value: []byte("view")}, {Value: []byte("click")}})
	if err != nil || len(res.Rejected) != 1 {
		t.Fatalf("Write = %v, %d rejected; want nil, 1", err, len(res.Rejected))
	}
	if got := tally.Snapshot(); got["view"] != 2 || got["click"] != 1 || len(got) != 2 || tally.Total() != 3 {
		t.Fatalf("tally %v", got)
	}
}

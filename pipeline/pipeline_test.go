package pipeline

import (
	"errors"
	"fmt"
	"testing"
)

func TestPermanent(t *testing.T) {
	base := errors.New("bad row")
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"permanent", Permanent(base), true},
		{"wrapped permanent", fmt.Errorf("insert 3 rows: %w", Permanent(base)), true},
		{"joined", errors.Join(errors.New("x"), Permanent(base)), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPermanent(tc.err); got != tc.want {
				t.Fatalf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent hides the wrapped error from errors.Is")
	}
}

func TestBatchPolicyValidate(t *testing.T) {
	cases := []struct {
		name string
		p    BatchPolicy
		want string
	}{
		{"records", BatchPolicy{MaxBytes: 1}, "b.max_records must be > 0"},
		{"bytes", BatchPolicy{MaxRecords: 1}, "b.max_bytes must be > 0"},
		{"wait", BatchPolicy{MaxRecords: 1, MaxBytes: 1, MaxWait: -1}, "b.max_wait must be >= 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate("b"); err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if err := DefaultBatchPolicy().Validate("b"); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderValue(t *testing.T) {
	r := Record{Headers: []Header{{Key: "reply-to", Value: []byte("a")}, {Key: "reply-to", Value: []byte("b")}}}
	if v, ok := r.HeaderValue("reply-to"); !ok || string(v) != "a" {
		t.Fatalf("HeaderValue = %q, %v; want first value a", v, ok)
	}
	if _, ok := r.HeaderValue("correlation-id"); ok {
		t.Fatal("found a header that is not there")
	}
}

package duckdb_test

import (
	"slices"
	"testing"

	"github.com/streamrec/streamrec/pipeline/duckdb"
)

func TestSplitStatements(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"two", "SELECT 1;\nSELECT 2;\n", []string{"SELECT 1", "SELECT 2"}},
		{"quoted semicolons", `SELECT 'a;''b' AS "x;y"; SELECT 2`, []string{`SELECT 'a;''b' AS "x;y"`, "SELECT 2"}},
		{"comments", "-- a; comment\nSELECT 1 /* ; */;\n-- only a comment;\n", []string{"-- a; comment\nSELECT 1 /* ; */"}},
		{"blank", " ;\n; ", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := duckdb.SplitStatements(c.text); !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

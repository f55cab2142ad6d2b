package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/streamrec/streamrec/pipeline/duckdb"
)

func sqlCmd(f *flags) *cobra.Command {
	var dir, format string
	cmd := &cobra.Command{
		Use:   `sql [--dir data/analytics] [--format table|csv|tsv|json] ["SELECT ..."]`,
		Short: "Query the embedded analytics store (Parquet files) with SQL, through DuckDB",
		Long: `Runs SQL over the embedded analytics store with an in-memory DuckDB. With no
query argument, reads statements separated by ; from stdin until EOF. Each
statement reads the newest published generation of every table, whole, also
while streamrec run writes and compacts the store: never a half-compacted one.

Views have the names and columns of the ClickHouse schema (docs/analytics.md):
events, items, recommendations (deduplicated, as ClickHouse's FINAL reads them),
item_hourly_stats, search_stats and reco_ctr_stats; raw.events, raw.items and
raw.recommendations hold every stored row, replays included. Times are UTC
TIMESTAMPs with milliseconds; event_ms, updated_ms and served_ms are there too.

The SQL is DuckDB's. These ClickHouse functions are defined as macros:
` + "  " + macroNames() + `
FROM t FINAL runs (FINAL is read as a table alias). Write instead:
  quantileExact(0.95)(x)  list_sort(list(x))[CAST(floor(0.95*count(x)) AS BIGINT)+1]
                          (quantile_disc differs when 0.95*n is whole)
  ANY LEFT JOIN           LEFT JOIN (one row per key on the right)
  arrayJoin(a)            unnest(a)
  x -> f(x)               lambda x: f(x)  (list_transform, list_filter)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var stmts []string
			if len(args) == 1 {
				stmts = []string{args[0]}
			} else {
				text, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				stmts = duckdb.SplitStatements(string(text))
			}
			if !cmd.Flags().Changed("dir") {
				cfg, err := f.load(cmd)
				if err != nil {
					return err
				}
				dir = cfg.Analytics.Dir
			}
			db, err := duckdb.Open(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer db.Close()
			out := cmd.OutOrStdout()
			for i, s := range stmts {
				res, err := db.Query(cmd.Context(), s)
				if err != nil {
					return err
				}
				if i > 0 && format == duckdb.FormatTable {
					fmt.Fprintln(out)
				}
				if err := res.Write(out, format); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the embedded analytics store's folder (default: config analytics.dir, data/analytics)")
	cmd.Flags().StringVar(&format, "format", duckdb.FormatTable, "output format: "+strings.Join(duckdb.Formats, ", "))
	return cmd
}

// macroNames lists the macros' names, wrapped and indented for the help.
func macroNames() string {
	var b strings.Builder
	line := 0
	for i, m := range duckdb.Macros {
		name, _, _ := strings.Cut(m, "(")
		switch {
		case i == 0:
		case line+len(name) > 74:
			b.WriteString(",\n  ")
			line = 0
		default:
			b.WriteString(", ")
			line += 2
		}
		b.WriteString(name)
		line += len(name)
	}
	return b.String()
}

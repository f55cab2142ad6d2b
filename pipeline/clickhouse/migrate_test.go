package clickhouse_test

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/streamrec/streamrec/pipeline/clickhouse"
)

// schemaDir holds the real migrations.
var schemaDir = os.DirFS("../../schemas/clickhouse")

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"empty", "", nil},
		{"comments only", "-- a\n  -- b;\n", nil},
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"two", "SELECT 1;\nSELECT 2;\n", []string{"SELECT 1", "SELECT 2"}},
		{"multi-line with trailing spaces", "CREATE TABLE t\n(\n  a UInt8\n)\nENGINE = Log; \t\r\n",
			[]string{"CREATE TABLE t\n(\n  a UInt8\n)\nENGINE = Log"}},
		{"semicolon inside a line", "SELECT ';' AS x, 1\nFROM t;\n", []string{"SELECT ';' AS x, 1\nFROM t"}},
		{"comment between statements", "SELECT 1;\n-- next one;\nSELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"empty statements", ";\n;\nSELECT 1;\n", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clickhouse.SplitStatements(tt.sql); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitStatements(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestMigrateSchema(t *testing.T) {
	ctx, conn := open(t)

	applied, err := clickhouse.Migrate(ctx, conn, schemaDir)
	if err != nil {
		t.Fatalf("Migrate on an empty database: %v", err)
	}
	if want := []string{"0001_init"}; !slices.Equal(applied, want) {
		t.Fatalf("applied %q, want %q", applied, want)
	}

	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, want := range []string{
		clickhouse.MigrationsTable, "events", "items", "recommendations",
		"item_hourly_mv", "item_hourly_stats", "search_daily_mv", "search_stats",
		"reco_events_mv", "reco_ctr_stats",
	} {
		if !slices.Contains(tables, want) {
			t.Errorf("table %s missing after migration; have %q", want, tables)
		}
	}

	applied, err = clickhouse.Migrate(ctx, conn, schemaDir)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate = %q, %v; want nothing applied", applied, err)
	}
}

func TestMigrateOrderAndRecord(t *testing.T) {
	ctx, conn := open(t)
	migrations := fstest.MapFS{
		"0002_b.sql":   {Data: []byte("-- b\nCREATE TABLE b (x UInt8) ENGINE = Log;\nINSERT INTO b SELECT count() FROM a;\n")},
		"0001_a.sql":   {Data: []byte("CREATE TABLE a (x UInt8) ENGINE = Log;\n")},
		"README.md":    {Data: []byte("not a migration")},
		"sub/0003.sql": {Data: []byte("NOT SQL;")},
	}
	applied, err := clickhouse.Migrate(ctx, conn, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001_a", "0002_b"}; !slices.Equal(applied, want) {
		t.Fatalf("applied %q, want %q", applied, want)
	}

	migrations["0003_c.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE c (x UInt8) ENGINE = Log;")}
	applied, err = clickhouse.Migrate(ctx, conn, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0003_c"}; !slices.Equal(applied, want) {
		t.Fatalf("applied %q, want %q", applied, want)
	}

	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+clickhouse.MigrationsTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d migrations recorded, want 3", n)
	}
}

func TestMigrateChecksumChanged(t *testing.T) {
	ctx, conn := open(t)
	migrations := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x UInt8) ENGINE = Log;\n")}}
	if _, err := clickhouse.Migrate(ctx, conn, migrations); err != nil {
		t.Fatal(err)
	}
	migrations["0001_a.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE a (x UInt16) ENGINE = Log;\n")}
	migrations["0002_b.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE b (x UInt8) ENGINE = Log;\n")}
	applied, err := clickhouse.Migrate(ctx, conn, migrations)
	if !errors.Is(err, clickhouse.ErrChecksum) {
		t.Fatalf("Migrate after a change = %q, %v; want ErrChecksum", applied, err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'b'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a later migration was applied although an earlier one had changed")
	}
}

func TestMigrateFailureNotRecorded(t *testing.T) {
	ctx, conn := open(t)
	migrations := fstest.MapFS{"0001_a.sql": {Data: []byte(
		"CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Log;\nCREATE TABLE b (x NoSuchType) ENGINE = Log;\n")}}
	applied, err := clickhouse.Migrate(ctx, conn, migrations)
	if err == nil || len(applied) != 0 {
		t.Fatalf("Migrate with a bad statement = %q, %v; want an error and nothing applied", applied, err)
	}

	// Fixed, it runs again from the start: the IF NOT EXISTS statement repeats harmlessly.
	migrations["0001_a.sql"] = &fstest.MapFile{Data: []byte(
		"CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Log;\nCREATE TABLE b (x UInt8) ENGINE = Log;\n")}
	applied, err = clickhouse.Migrate(ctx, conn, migrations)
	if err != nil || !slices.Equal(applied, []string{"0001_a"}) {
		t.Fatalf("Migrate after the fix = %q, %v; want [0001_a]", applied, err)
	}
}

package duckdb

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Formats Write knows.
const (
	FormatTable = "table"
	FormatCSV   = "csv"
	FormatTSV   = "tsv"
	FormatJSON  = "json"
)

// Formats lists the formats Write knows.
var Formats = []string{FormatTable, FormatCSV, FormatTSV, FormatJSON}

// Write writes the result to w in format: table (aligned columns under a
// header), csv and tsv (a header line, then a line per row; in tsv tabs,
// newlines and backslashes are escaped and NULL is \N, as ClickHouse's
// TabSeparatedWithNames has it) or json (one object per row, keys in
// column order, as ClickHouse's JSONEachRow).
func (r *Result) Write(w io.Writer, format string) error {
	switch format {
	case FormatTable:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(r.Columns, "\t"))
		dashes := make([]string, len(r.Columns))
		for i, c := range r.Columns {
			dashes[i] = strings.Repeat("-", max(len(c), 1))
		}
		fmt.Fprintln(tw, strings.Join(dashes, "\t"))
		for _, row := range r.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(r.text(i, v, "NULL"))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return tw.Flush()
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(r.Columns); err != nil {
			return err
		}
		for _, row := range r.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = r.text(i, v, "")
			}
			if err := cw.Write(cells); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case FormatTSV:
		esc := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
		var b strings.Builder
		for i, c := range r.Columns {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(esc.Replace(c))
		}
		b.WriteByte('\n')
		for _, row := range r.Rows {
			for i, v := range row {
				if i > 0 {
					b.WriteByte('\t')
				}
				if v == nil {
					b.WriteString(`\N`)
				} else {
					b.WriteString(esc.Replace(r.text(i, v, "")))
				}
			}
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	case FormatJSON:
		var b strings.Builder
		for _, row := range r.Rows {
			b.WriteByte('{')
			for i, v := range row {
				if i > 0 {
					b.WriteByte(',')
				}
				k, _ := json.Marshal(r.Columns[i])
				b.Write(k)
				b.WriteByte(':')
				b.Write(r.json(i, v))
			}
			b.WriteString("}\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// text is value v of column i as text; null is what NULL prints as.
func (r *Result) text(i int, v any, null string) string {
	switch x := v.(type) {
	case nil:
		return null
	case string:
		return x
	case []byte:
		return string(x)
	case float64:
		return formatFloat(x, 64)
	case float32:
		return formatFloat(float64(x), 32)
	case time.Time:
		return formatTime(x, r.typ(i))
	case []any:
		parts := make([]string, len(x))
		for j, e := range x {
			if s, ok := e.(string); ok {
				parts[j] = "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
			} else {
				parts[j] = r.text(i, e, "NULL")
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(v)
}

// json is value v of column i as JSON: numbers, booleans, strings and
// arrays as themselves, times as text, anything else as its text.
func (r *Result) json(i int, v any) []byte {
	switch x := v.(type) {
	case nil:
		return []byte("null")
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.AppendQuote(nil, formatFloat(x, 64))
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return strconv.AppendQuote(nil, formatFloat(float64(x), 32))
		}
	case time.Time:
		return strconv.AppendQuote(nil, formatTime(x, r.typ(i)))
	case duckdb.Decimal:
		return []byte(x.String())
	case []any:
		b := []byte{'['}
		for j, e := range x {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, r.json(i, e)...)
		}
		return append(b, ']')
	case string, bool, int64, int32, int16, int8, uint64, uint32, uint16, uint8, int, uint:
	default:
		return strconv.AppendQuote(nil, r.text(i, v, ""))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return strconv.AppendQuote(nil, fmt.Sprint(v))
	}
	return b
}

func (r *Result) typ(i int) string {
	if i < len(r.Types) {
		return r.Types[i]
	}
	return ""
}

func formatFloat(f float64, bits int) string {
	if math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// formatTime prints a DATE as 2006-01-02, a TIME as 15:04:05 and a
// timestamp as 2006-01-02 15:04:05, with its fraction when it has one.
func formatTime(t time.Time, typ string) string {
	switch {
	case typ == "DATE" || strings.HasPrefix(typ, "DATE[") || strings.HasPrefix(typ, "DATE "):
		return t.Format(time.DateOnly)
	case strings.HasPrefix(typ, "TIME") && !strings.HasPrefix(typ, "TIMESTAMP"):
		return t.Format("15:04:05.999999")
	}
	return t.UTC().Format("2006-01-02 15:04:05.999999")
}

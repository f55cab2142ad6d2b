package analyticsdoc_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamrec/streamrec/pipeline/clickhouse"
	"github.com/streamrec/streamrec/schemas"
)

// Environment variables the chdb backend reads.
const (
	// envRequireChdb set to 1 makes a missing chdb a failure, not a skip.
	envRequireChdb = "STREAMREC_REQUIRE_CHDB"
	// envChdbPython names a python that imports chdb, instead of the venv
	// of scripts/chdb.sh.
	envChdbPython = "STREAMREC_CHDB_PYTHON"
)

// Scripts of the repository the chdb backend runs, from this folder.
var (
	chdbScript = filepath.Join("..", "..", "scripts", "chdb.sh")
	chdbRunner = filepath.Join("..", "..", "scripts", "chdb_query.py")
)

// TestAnalystQueriesChdb runs TestAnalystQueries' rounds on the current
// ClickHouse engine, in process through PyPI's chdb-core (scripts/chdb.sh
// installs it): every migration of schemas.ClickHouseMigrations() applied as
// the migrator applies it (same files, same order, statements split by
// clickhouse.SplitStatements), the dataset inserted with the pipeline's
// column lists, every query of the guide run as written (never its DuckDB
// variant) and checked against the same answers computed in Go. No current
// ClickHouse server installs here; the native-protocol adapter stays tested
// on 18.16.
func TestAnalystQueriesChdb(t *testing.T) {
	queries := docQueries(t)
	s := startChdb(t)

	var tz, version string
	{
		rows, err := s.query("SELECT timezone(), version()")
		if err != nil || len(rows) != 1 {
			t.Fatalf("chdb: SELECT timezone(), version(): %v %v", rows, err)
		}
		tz, version = rows[0][0].str, rows[0][1].str
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatalf("chdb time zone %q: %v", tz, err)
	}
	s.loc = loc
	if err := s.migrate(schemas.ClickHouseMigrations()); err != nil {
		t.Fatal(err)
	}
	b := backend{
		loc: loc,
		now: func(t *testing.T) time.Time {
			t.Helper()
			rows, err := s.query("SELECT now()")
			if err != nil || len(rows) != 1 {
				t.Fatalf("chdb: SELECT now(): %v %v", rows, err)
			}
			return time.Unix(int64(rows[0][0].num), 0).In(loc)
		},
		query: s.query,
	}
	d := newDataset(time.Now())
	t.Run("backend=chdb-"+majorMinor(version), func(t *testing.T) {
		t.Logf("ClickHouse %s embedded by chdb-core %s (scripts/chdb_query.py), time zone %s", version, s.chdbVersion, tz)
		checkRounds(t, b, d, queries, func(t *testing.T) {
			t.Helper()
			if err := s.insert(d.tables()); err != nil {
				t.Fatal(err)
			}
		}, s.exec)
	})
}

// chdbSession is a scripts/chdb_query.py process holding one chdb session
// whose tables live in a temporary folder. It is not safe for concurrent
// use: one request is in flight at a time.
type chdbSession struct {
	cmd         *exec.Cmd
	in          io.WriteCloser
	out         *bufio.Reader
	stderr      bytes.Buffer // read only once cmd.Wait returned
	chdbVersion string
	// loc is the engine's time zone, for its DateTime text.
	loc *time.Location
}

// chdbPython returns the python that imports chdb, or why there is none.
func chdbPython() (string, error) {
	if p := os.Getenv(envChdbPython); p != "" {
		return p, nil
	}
	out, err := exec.Command("bash", chdbScript, "python").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", errors.New(strings.TrimSpace(string(exit.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// startChdb starts a session, or skips the test (fails it under
// STREAMREC_REQUIRE_CHDB=1) when chdb cannot be had. The process ends with
// the test.
func startChdb(t *testing.T) *chdbSession {
	t.Helper()
	unavailable := func(why string) {
		t.Helper()
		if os.Getenv(envRequireChdb) == "1" {
			t.Fatalf("chdb: %s, and %s=1", why, envRequireChdb)
		}
		t.Skipf("chdb: %s (%s=1 makes this a failure)", why, envRequireChdb)
	}
	python, err := chdbPython()
	if err != nil {
		unavailable(err.Error())
	}
	s := &chdbSession{cmd: exec.Command(python, chdbRunner, t.TempDir()), loc: time.UTC}
	s.cmd.Stderr = &s.stderr
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.out = bufio.NewReaderSize(stdout, 1<<20)
	if err := s.cmd.Start(); err != nil {
		unavailable(fmt.Sprintf("%s: %v (%s names another python)", python, err, envChdbPython))
	}
	var hello struct{ Ready, Error string }
	if err := s.read(&hello); err != nil || hello.Ready == "" {
		s.in.Close()
		s.cmd.Wait()
		why := hello.Error
		if err != nil {
			why = err.Error()
		}
		if stderr := strings.TrimSpace(s.stderr.String()); stderr != "" { // read only after Wait
			why += "\n" + stderr
		}
		unavailable(fmt.Sprintf("%s on %s did not start: %s (scripts/chdb.sh install makes a venv with chdb; %s names another python)",
			chdbRunner, python, why, envChdbPython))
	}
	t.Cleanup(func() {
		s.in.Close() // the runner stops at the end of its input
		err := s.cmd.Wait()
		if err != nil {
			t.Errorf("chdb runner: %v", err)
		}
		if stderr := strings.TrimSpace(s.stderr.String()); stderr != "" && (err != nil || t.Failed()) {
			t.Logf("chdb runner's stderr:\n%s", stderr)
		}
	})
	s.chdbVersion = hello.Ready
	// NaN and infinities as "nan" and "inf", not null: a float column
	// never reads as NULL, as over the native protocol.
	if err := s.exec("SET output_format_json_quote_denormals = 1"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *chdbSession) read(v any) error {
	line, err := s.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("chdb runner: %w", err)
	}
	return json.Unmarshal(line, v)
}

// run sends one statement and returns its result as JSONCompact text.
func (s *chdbSession) run(sql string) (string, error) {
	req, err := json.Marshal(map[string]string{"sql": sql, "format": "JSONCompact"})
	if err != nil {
		return "", err
	}
	if _, err := s.in.Write(append(req, '\n')); err != nil {
		return "", fmt.Errorf("chdb runner: %w", err)
	}
	var reply struct {
		Data  *string
		Error string
	}
	if err := s.read(&reply); err != nil {
		return "", err
	}
	if reply.Data == nil {
		return "", errors.New(cmp.Or(reply.Error, "chdb runner: a reply without data or error"))
	}
	return *reply.Data, nil
}

// exec runs a statement that returns no rows.
func (s *chdbSession) exec(sql string) error {
	_, err := s.run(sql)
	return err
}

// migrate applies the *.sql files of migrations as clickhouse.Migrate does:
// in name order, each split by clickhouse.SplitStatements, statement by
// statement. (The migrator's own bookkeeping table is not made here.)
func (s *chdbSession) migrate(migrations fs.FS) error {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return errors.New("no migrations")
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return err
		}
		stmts := clickhouse.SplitStatements(string(body))
		for i, stmt := range stmts {
			if err := s.exec(stmt); err != nil {
				return fmt.Errorf("migration %s, statement %d of %d, on current ClickHouse: %w\n%s",
					name, i+1, len(stmts), err, stmt)
			}
		}
	}
	return nil
}

// insert writes each table's rows in one INSERT with its column list and
// the rows inline as JSONEachRow. A time goes as Unix seconds, as the native
// protocol sends a DateTime, so the engine's time zone does not matter.
func (s *chdbSession) insert(tables []tableRows) error {
	for _, tr := range tables {
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) FORMAT JSONEachRow\n", tr.table, strings.Join(tr.columns, ", "))
		for i := range tr.n {
			obj := make(map[string]any, len(tr.columns))
			for j, v := range tr.row(i) {
				if at, ok := v.(time.Time); ok {
					v = at.Unix()
				}
				obj[tr.columns[j]] = v
			}
			line, err := json.Marshal(obj)
			if err != nil {
				return fmt.Errorf("insert into %s, row %d: %w", tr.table, i, err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := s.exec(b.String()); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", tr.n, tr.table, err)
		}
	}
	return nil
}

// query returns every row of sql, each value a cell as queryRows makes it
// from the native protocol: numbers and times (Unix seconds) as numbers,
// strings and enums as strings.
func (s *chdbSession) query(sql string) ([][]cell, error) {
	text, err := s.run(sql)
	if err != nil {
		return nil, err
	}
	var res struct {
		Meta []struct{ Name, Type string }
		Data [][]json.RawMessage
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("chdb result: %w", err)
	}
	out := make([][]cell, len(res.Data))
	for i, row := range res.Data {
		if len(row) != len(res.Meta) {
			return nil, fmt.Errorf("chdb result: row %d has %d values for %d columns", i, len(row), len(res.Meta))
		}
		for j, raw := range row {
			c, err := s.cell(res.Meta[j].Type, raw)
			if err != nil {
				return nil, fmt.Errorf("chdb result: row %d column %s: %w", i, res.Meta[j].Name, err)
			}
			out[i] = append(out[i], c)
		}
	}
	return out, nil
}

// cell reads one JSONCompact value of ClickHouse type typ.
func (s *chdbSession) cell(typ string, raw json.RawMessage) (cell, error) {
	if string(raw) == "null" {
		return cell{isNil: true}, nil
	}
	for _, wrapper := range []string{"Nullable(", "LowCardinality("} {
		if strings.HasPrefix(typ, wrapper) {
			typ = strings.TrimSuffix(strings.TrimPrefix(typ, wrapper), ")")
		}
	}
	// A number comes bare, or quoted ("nan", "inf", or a 64-bit integer
	// under output_format_json_quote_64bit_integers).
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return cell{}, fmt.Errorf("%s value %s", typ, raw)
		}
		text = n.String()
	}
	switch {
	case typ == "String", strings.HasPrefix(typ, "FixedString"), strings.HasPrefix(typ, "Enum"), typ == "UUID":
		return cell{str: text}, nil
	case strings.HasPrefix(typ, "DateTime"):
		at, err := time.ParseInLocation(time.DateTime, text, s.loc)
		return cell{num: float64(at.Unix()), isNum: true}, err
	case typ == "Date", typ == "Date32":
		at, err := time.Parse(time.DateOnly, text) // clickhouse-go reads a Date as UTC midnight
		return cell{num: float64(at.Unix()), isNum: true}, err
	case typ == "Bool":
		if text == "true" {
			return cell{num: 1, isNum: true}, nil
		}
		return cell{num: 0, isNum: true}, nil
	case strings.HasPrefix(typ, "Int"), strings.HasPrefix(typ, "UInt"), strings.HasPrefix(typ, "Float"),
		strings.HasPrefix(typ, "Decimal"):
		f, err := strconv.ParseFloat(text, 64)
		return cell{num: f, isNum: true}, err
	}
	return cell{}, fmt.Errorf("no cell for type %s", typ)
}

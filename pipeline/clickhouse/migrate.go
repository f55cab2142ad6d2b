package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrationsTable records the applied migrations: version (the file name
// without .sql), its sha256 checksum and when it was applied.
const MigrationsTable = "schema_migrations"

// ErrChecksum means an applied migration's file has changed since. Applied
// migrations are immutable: add a new file instead.
var ErrChecksum = errors.New("applied migration changed")

// Migrate applies the *.sql files at the root of migrations, in name order,
// each once, in the connection's database, and returns the versions it
// applied (none when the database is current).
//
// A file holds statements separated by a ';' that ends a line; whole-line
// "--" comments are dropped. A migration is recorded in MigrationsTable only
// after all of its statements succeeded. ClickHouse DDL is not
// transactional, so a migration that fails half way leaves its earlier
// statements applied and unrecorded: write them IF NOT EXISTS so the next run
// can repeat them. A recorded migration whose file has changed fails with
// ErrChecksum before anything is applied.
//
// Migrate is not safe to run concurrently against one database.
func Migrate(ctx context.Context, conn driver.Conn, migrations fs.FS) (applied []string, err error) {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("clickhouse migrate: %w", err)
	}
	sort.Strings(names)

	if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+MigrationsTable+` (
    version    String,
    checksum   String,
    applied_at DateTime
) ENGINE = MergeTree() ORDER BY version`); err != nil {
		return nil, fmt.Errorf("clickhouse migrate: create %s: %w", MigrationsTable, err)
	}
	done, err := appliedMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}

	type migration struct {
		version, checksum string
		statements        []string
	}
	var todo []migration
	for _, name := range names {
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return nil, fmt.Errorf("clickhouse migrate: %w", err)
		}
		sum := sha256.Sum256(body)
		m := migration{
			version:  strings.TrimSuffix(path.Base(name), ".sql"),
			checksum: hex.EncodeToString(sum[:]),
		}
		if prev, ok := done[m.version]; ok {
			if prev != m.checksum {
				return nil, fmt.Errorf("clickhouse migrate %s: %w (recorded checksum %s, file %s)",
					m.version, ErrChecksum, prev, m.checksum)
			}
			continue
		}
		m.statements = SplitStatements(string(body))
		todo = append(todo, m)
	}

	for _, m := range todo {
		for i, stmt := range m.statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("clickhouse migrate %s: statement %d of %d: %w",
					m.version, i+1, len(m.statements), err)
			}
		}
		if err := record(ctx, conn, m.version, m.checksum); err != nil {
			return applied, fmt.Errorf("clickhouse migrate %s: record: %w", m.version, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// record inserts one row into MigrationsTable. An INSERT with arguments
// goes through a batch: 18.16 has no server-side parameters.
func record(ctx context.Context, conn driver.Conn, version, checksum string) error {
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO `+MigrationsTable+` (version, checksum, applied_at)`)
	if err != nil {
		return err
	}
	if err := batch.Append(version, checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		batch.Abort()
		return err
	}
	return batch.Send()
}

func appliedMigrations(ctx context.Context, conn driver.Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, `SELECT version, checksum FROM `+MigrationsTable)
	if err != nil {
		return nil, fmt.Errorf("clickhouse migrate: read %s: %w", MigrationsTable, err)
	}
	defer rows.Close()
	done := make(map[string]string)
	for rows.Next() {
		var version, checksum string
		if err := rows.Scan(&version, &checksum); err != nil {
			return nil, fmt.Errorf("clickhouse migrate: read %s: %w", MigrationsTable, err)
		}
		done[version] = checksum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse migrate: read %s: %w", MigrationsTable, err)
	}
	return done, nil
}

// SplitStatements splits a migration file into statements: a statement
// ends at a ';' that ends a line (trailing spaces allowed). Whole-line "--"
// comments and empty statements are dropped; the ';' is not kept, since the
// native protocol runs one statement per query.
func SplitStatements(sql string) []string {
	var (
		out []string
		cur strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t\r"), ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
	}
	flush()
	return out
}

package parquetstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// rowGroupRows is the most rows in one row group of a part file: merged parts
// are streamed through a writer that cuts row groups at this size, so a
// merge holds about one row group in memory.
const rowGroupRows = 128 << 10

// request is one Insert call waiting for its rows to be written.
type request[R any] struct {
	ctx  context.Context
	rows []R
	size int
	done chan error // buffered: the writer never blocks on it
}

// part is one part file of a day.
type part struct {
	name  string
	seq   int64 // orders parts by when they were written
	level int   // how many merges made it (0: written by a flush)
}

// partName is part-<seq>-<level>.parquet; seq is zero-padded so that names
// sort as the parts were written.
func partName(seq int64, level int) string {
	return fmt.Sprintf("part-%020d-%d.parquet", seq, level)
}

func parsePartName(name string) (part, bool) {
	rest, ok := strings.CutPrefix(name, "part-")
	if !ok {
		return part{}, false
	}
	rest, ok = strings.CutSuffix(rest, ".parquet")
	if !ok {
		return part{}, false
	}
	seqStr, levelStr, ok := strings.Cut(rest, "-")
	if !ok {
		return part{}, false
	}
	seq, err1 := strconv.ParseInt(seqStr, 10, 64)
	level, err2 := strconv.Atoi(levelStr)
	if err1 != nil || err2 != nil || level < 0 {
		return part{}, false
	}
	return part{name: name, seq: seq, level: level}, true
}

// table owns one table's folder: its goroutine (run) is the only writer of
// the folder and the only user of pending and parts.
type table[R any] struct {
	name     string
	dir      string
	cfg      Config
	partTime func(*R) time.Time // partitions rows by day
	size     func(*R) int
	log      *slog.Logger
	metrics  *metrics
	codec    *zstd.Codec // the store's own: zstd encoders are pooled per codec
	now      func() time.Time

	queue chan *request[R]
	stop  chan struct{} // closed by Store.Close once no Insert can enqueue
	done  chan struct{} // closed when run returns

	parts   map[string][]part // by day folder (date=YYYY-MM-DD), ordered by seq
	lastSeq int64

	// Generations (see Snapshot): mdir holds the table's manifests; gens
	// are those still on disk, oldest first, the last one the newest
	// published; garbage are parts no longer live (relative paths, as in
	// manifests), removed once no generation in gens lists them.
	mdir    string
	gens    []generation
	garbage map[string]bool
}

// generation is a published manifest and the parts it lists.
type generation struct {
	gen   int64
	parts []string
}

func newTable[R any](root, name string, cfg Config, partTime func(*R) time.Time, size func(*R) int, log *slog.Logger, m *metrics, codec *zstd.Codec) (*table[R], error) {
	t := &table[R]{
		codec:    codec,
		name:     name,
		dir:      filepath.Join(root, name),
		cfg:      cfg,
		partTime: partTime,
		size:     size,
		log:      log.With("table", name),
		metrics:  m,
		now:      time.Now,
		queue:    make(chan *request[R], cfg.QueueSize),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		parts:    map[string][]part{},
		mdir:     manifestsDir(root, name),
		garbage:  map[string]bool{},
	}
	if err := t.scan(); err != nil {
		return nil, fmt.Errorf("parquetstore open table %s: %w", name, err)
	}
	// A generation of what Open found: the first for a folder written
	// before generations existed, and the end of any a crash left behind.
	if err := t.publish(); err != nil {
		return nil, fmt.Errorf("parquetstore open table %s: %w", name, err)
	}
	if err := t.collect(); err != nil {
		t.log.Warn("removing replaced parts failed", "err", err)
	}
	return t, nil
}

// scan creates the table's folders, removes temporary files a crash left
// and finds the live parts of every day: those of the newest generation, or
// every part file if the table has none yet. Part files the newest
// generation does not list are garbage: a merge's sources a crash left, or
// a merge's or flush's output whose generation was never published (no
// Insert returned nil for its rows).
func (t *table[R]) scan() error {
	for _, d := range []string{t.dir, t.mdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	if err := removeUnfinished(t.mdir, t.log); err != nil {
		return err
	}
	onDisk := map[string][]part{}
	days, err := os.ReadDir(t.dir)
	if err != nil {
		return err
	}
	for _, d := range days {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), "date=") {
			continue
		}
		dayDir := filepath.Join(t.dir, d.Name())
		if err := removeUnfinished(dayDir, t.log); err != nil {
			return err
		}
		files, err := os.ReadDir(dayDir)
		if err != nil {
			return err
		}
		for _, f := range files {
			p, ok := parsePartName(f.Name())
			if !ok {
				continue
			}
			onDisk[d.Name()] = append(onDisk[d.Name()], p)
			t.lastSeq = max(t.lastSeq, p.seq)
		}
	}
	gens, err := generations(t.mdir)
	if err != nil {
		return err
	}
	for _, gen := range gens {
		m, err := readManifest(filepath.Join(t.mdir, manifestName(gen)))
		if err != nil {
			return err
		}
		t.gens = append(t.gens, generation{gen: gen, parts: m.Parts})
	}
	if len(t.gens) == 0 {
		t.parts = onDisk
	} else {
		live := map[string]bool{}
		for _, name := range t.gens[len(t.gens)-1].parts {
			live[name] = true
		}
		for day, ps := range onDisk {
			for _, p := range ps {
				if name := day + "/" + p.name; live[name] {
					t.parts[day] = append(t.parts[day], p)
					delete(live, name)
				} else {
					t.garbage[name] = true
				}
			}
		}
		for name := range live {
			t.log.Warn("part listed in the newest generation is missing", "part", name)
		}
	}
	for _, ps := range t.parts {
		slices.SortFunc(ps, func(a, b part) int { return cmp.Compare(a.seq, b.seq) })
	}
	t.setPartsGauge()
	return nil
}

// removeUnfinished removes the temporary files (*.tmp) a crash left in dir.
func removeUnfinished(dir string, log *slog.Logger) error {
	files, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".tmp") {
			log.Info("removing unfinished file", "file", filepath.Join(dir, f.Name()))
			if err := os.Remove(filepath.Join(dir, f.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func readManifest(path string) (manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifest{}, err
	}
	defer f.Close()
	return decodeManifest(f)
}

// publish writes the live parts as the next generation. Until it returns
// nil, readers see the generation before.
func (t *table[R]) publish() error {
	days := slices.Sorted(maps.Keys(t.parts))
	m := manifest{Parts: []string{}}
	if len(t.gens) > 0 {
		m.Generation = t.gens[len(t.gens)-1].gen
	}
	m.Generation++
	for _, day := range days {
		for _, p := range t.parts[day] {
			m.Parts = append(m.Parts, day+"/"+p.name)
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = writeAtomic(filepath.Join(t.mdir, manifestName(m.Generation)), func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("parquetstore publish %s generation %d: %w", t.name, m.Generation, err)
	}
	t.gens = append(t.gens, generation{gen: m.Generation, parts: m.Parts})
	return nil
}

// collect retires the generations before the newest that no reader holds
// (see Snapshot), then removes the garbage parts no remaining generation
// lists. What a reader still holds stays for a later collect.
func (t *table[R]) collect() error {
	var errs []error
	kept := t.gens[:0]
	for i, g := range t.gens {
		if i < len(t.gens)-1 {
			retired, err := retire(filepath.Join(t.mdir, manifestName(g.gen)))
			if err != nil {
				errs = append(errs, err)
			}
			if retired {
				continue
			}
		}
		kept = append(kept, g)
	}
	clear(t.gens[len(kept):])
	t.gens = kept
	listed := map[string]bool{}
	for _, g := range t.gens {
		for _, name := range g.parts {
			listed[name] = true
		}
	}
	// Removals are not fsynced: a part whose removal a crash undoes is
	// garbage again at the next Open.
	for name := range t.garbage {
		if listed[name] {
			continue
		}
		if err := os.Remove(filepath.Join(t.dir, filepath.FromSlash(name))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		delete(t.garbage, name)
	}
	t.setPartsGauge()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("parquetstore collect %s: %w", t.name, err)
	}
	return nil
}

// retire removes the manifest at path if no reader holds it, reporting
// whether it is gone.
func retire(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	locked, err := tryLockExclusive(f)
	if !locked || err != nil {
		return false, err
	}
	// Removed while locked: a reader that opened it and waits for its
	// shared lock finds the name gone and reads the newest generation.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
}

func (t *table[R]) setPartsGauge() {
	n := 0
	for _, ps := range t.parts {
		n += len(ps)
	}
	t.metrics.parts.WithLabelValues(t.name).Set(float64(n))
	t.metrics.replaced.WithLabelValues(t.name).Set(float64(len(t.garbage)))
}

// nextSeq is the seq of the next part: the clock in nanoseconds, but always
// above every existing part's, so names sort by write order even if the
// clock steps back.
func (t *table[R]) nextSeq() int64 {
	t.lastSeq = max(t.now().UnixNano(), t.lastSeq+1)
	return t.lastSeq
}

// run collects requests into batches by the policy and writes each batch as
// part files until stop is closed; then it writes what is queued and
// returns. Every request it receives is answered.
func (t *table[R]) run() {
	defer close(t.done)
	var (
		pending      []*request[R]
		rows, nbytes int
		timer        = time.NewTimer(time.Hour)
		due          <-chan time.Time
	)
	timer.Stop()
	defer timer.Stop()
	pol := t.cfg.Batch
	full := func() bool { return rows >= pol.MaxRecords || nbytes >= pol.MaxBytes }
	add := func(req *request[R]) {
		if len(pending) == 0 && pol.MaxWait > 0 {
			timer.Reset(pol.MaxWait)
			due = timer.C
		}
		pending = append(pending, req)
		rows += len(req.rows)
		nbytes += req.size
	}
	flush := func() {
		timer.Stop()
		due = nil
		t.flush(pending)
		clear(pending)
		pending, rows, nbytes = pending[:0], 0, 0
	}
	for {
		select {
		case req := <-t.queue:
			add(req)
			// Take what else is queued already, up to a full batch.
		more:
			for !full() {
				select {
				case req := <-t.queue:
					add(req)
				default:
					break more
				}
			}
			if full() || pol.MaxWait == 0 {
				flush()
			}
		case <-due:
			flush()
		case <-t.stop:
			for {
				select {
				case req := <-t.queue:
					add(req)
					continue
				default:
				}
				break
			}
			if len(pending) > 0 {
				flush()
			}
			if err := t.collect(); err != nil {
				t.log.Warn("removing replaced parts failed", "err", err)
			}
			return
		}
	}
}

// flush writes the rows of reqs whose callers still wait, one part per day
// and MaxRecords rows, publishes them as a generation, answers every
// request, then compacts the days it wrote to, publishes the result and
// removes the parts no reader can hold any more.
func (t *table[R]) flush(reqs []*request[R]) {
	byDay := map[string][]R{}
	var days []string
	n := 0
	for _, req := range reqs {
		if req.ctx.Err() != nil {
			req.done <- req.ctx.Err()
			continue
		}
		for i := range req.rows {
			day := "date=" + t.partTime(&req.rows[i]).UTC().Format(time.DateOnly)
			if _, ok := byDay[day]; !ok {
				days = append(days, day)
			}
			byDay[day] = append(byDay[day], req.rows[i])
			n++
		}
	}
	var err error
	for _, day := range days {
		for chunk := range slices.Chunk(byDay[day], t.cfg.Batch.MaxRecords) {
			if err = t.writePart(day, chunk); err != nil {
				err = fmt.Errorf("parquetstore write %d %s rows: %w", n, t.name, err)
				break
			}
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = t.publish()
	}
	result := "ok"
	if err != nil {
		result = "error"
		t.log.Error("write failed", "rows", n, "err", err)
	}
	t.metrics.rows.WithLabelValues(t.name, result).Add(float64(n))
	for _, req := range reqs {
		if req.ctx.Err() == nil {
			req.done <- err
		}
	}
	if err != nil {
		return
	}
	merged := false
	for _, day := range days {
		n, cerr := t.compact(day)
		merged = merged || n > 0
		if cerr != nil {
			// The rows are durable in their parts; the next flush to this
			// day tries again.
			t.log.Warn("compaction failed", "day", day, "err", cerr)
		}
	}
	if merged {
		if err := t.publish(); err != nil {
			// Readers keep the generation before, whose parts stay; the
			// next publish lists the merged ones.
			t.log.Warn("publishing merged parts failed", "err", err)
			return
		}
	}
	if err := t.collect(); err != nil {
		t.log.Warn("removing replaced parts failed", "err", err)
	}
}

// writePart writes rows as a new level-0 part of day.
func (t *table[R]) writePart(day string, rows []R) error {
	dayDir := filepath.Join(t.dir, day)
	if _, ok := t.parts[day]; !ok {
		if err := os.MkdirAll(dayDir, 0o755); err != nil {
			return err
		}
		if err := syncDir(t.dir); err != nil {
			return err
		}
	}
	p := part{seq: t.nextSeq()}
	p.name = partName(p.seq, 0)
	err := writeFile(filepath.Join(dayDir, p.name), t.codec, func(w *parquet.GenericWriter[R]) error {
		_, err := w.Write(rows)
		return err
	})
	if err != nil {
		return err
	}
	t.parts[day] = append(t.parts[day], p)
	t.setPartsGauge()
	return nil
}

// compact merges the newest parts of day while it has more than
// CompactParts. Each merge takes the smallest run of newest parts that
// holds at least two parts and every part of its levels, and writes them,
// in order, as one part a level up. Parts' levels never rise from oldest to
// newest, so a merge always takes a suffix of the day's parts, and a row is
// rewritten once per level: O(log(rows a day)) times, not once per merge.
// It returns how many merges it made; the caller publishes them.
func (t *table[R]) compact(day string) (int, error) {
	n := 0
	for t.cfg.CompactParts > 0 && len(t.parts[day]) > t.cfg.CompactParts {
		parts := t.parts[day]
		levels := make([]int, len(parts))
		for i, p := range parts {
			levels[i] = p.level
		}
		slices.Sort(levels)
		level := levels[1] // the smallest level L with >= 2 parts at or below it
		var merge []part
		for _, p := range parts {
			if p.level <= level {
				merge = append(merge, p)
			}
		}
		if err := t.merge(day, merge, level+1); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// merge writes parts as one part of level, which replaces them in the live
// parts; they become garbage. Readers see the change only once it is
// published, and the replaced parts stay until no generation a reader can
// hold lists them (collect).
func (t *table[R]) merge(day string, parts []part, level int) error {
	start := t.now()
	dayDir := filepath.Join(t.dir, day)
	merged := part{seq: t.nextSeq(), level: level}
	merged.name = partName(merged.seq, level)
	rows := 0
	err := writeFile(filepath.Join(dayDir, merged.name), t.codec, func(w *parquet.GenericWriter[R]) error {
		buf := make([]R, 1024)
		for _, p := range parts {
			n, err := copyPart(w, filepath.Join(dayDir, p.name), buf)
			rows += n
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("parquetstore merge %d %s parts of %s: %w", len(parts), t.name, day, err)
	}
	kept := slices.DeleteFunc(t.parts[day], func(p part) bool {
		return slices.ContainsFunc(parts, func(m part) bool { return m.name == p.name })
	})
	t.parts[day] = append(kept, merged)
	for _, p := range parts {
		t.garbage[day+"/"+p.name] = true
	}
	t.setPartsGauge()
	t.log.Debug("merged parts", "day", day, "parts", len(parts), "rows", rows, "level", level, "took", t.now().Sub(start))
	return nil
}

// copyPart streams the rows of the part file at path into w.
func copyPart[R any](w *parquet.GenericWriter[R], path string, buf []R) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := parquet.NewGenericReader[R](f)
	defer r.Close()
	total := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += n
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writeFile writes a parquet file at path through fill, atomically
// (writeAtomic).
func writeFile[R any](path string, codec *zstd.Codec, fill func(*parquet.GenericWriter[R]) error) error {
	return writeAtomic(path, func(f *os.File) error {
		w := parquet.NewGenericWriter[R](f, parquet.Compression(codec), parquet.MaxRowsPerRowGroup(rowGroupRows))
		if err := fill(w); err != nil {
			return err
		}
		return w.Close()
	})
}

// writeAtomic writes a file at path through fill: to a temporary name
// first (*.tmp), fsynced, then renamed into place and the folder fsynced,
// so that the name never leads to a partial file and the file is durable
// once it returns nil.
func writeAtomic(path string, fill func(*os.File) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a folder, making the names created or removed in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

package parquetstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// manifestsFolder, under the store's folder, holds one folder of manifests
// per table.
const manifestsFolder = "manifests"

// snapshotAttempts bounds how often OpenSnapshot looks for the newest
// generation again after the writer retired the one it found. Each retry
// needs a newer generation to have been published and the one before it
// retired in between, so a few suffice.
const snapshotAttempts = 100

// manifest is one generation of a table: the part files a reader reads.
type manifest struct {
	Generation int64 `json:"generation"`
	// Parts are the live part files, relative to the table's folder
	// (date=YYYY-MM-DD/part-<seq>-<level>.parquet, slash-separated), by day
	// and then in write order.
	Parts []string `json:"parts"`
}

func manifestsDir(root, table string) string {
	return filepath.Join(root, manifestsFolder, table)
}

// manifestName is gen-<generation>.json; the generation is zero-padded so
// that names sort by generation.
func manifestName(gen int64) string {
	return fmt.Sprintf("gen-%020d.json", gen)
}

func parseManifestName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "gen-")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseInt(rest, 10, 64)
	return gen, err == nil && gen > 0
}

// generations lists the generations whose manifests are in dir, oldest
// first; none if dir does not exist.
func generations(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gens []int64
	for _, e := range entries {
		if gen, ok := parseManifestName(e.Name()); ok && e.Type().IsRegular() {
			gens = append(gens, gen)
		}
	}
	slices.Sort(gens)
	return gens, nil
}

func decodeManifest(f *os.File) (manifest, error) {
	var m manifest
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return manifest{}, fmt.Errorf("manifest %s: %w", f.Name(), err)
	}
	return m, nil
}

// LatestGeneration is the newest generation of table in the store folder
// dir, or 0 if it has none (a folder that no Store of this version has
// opened yet, or that does not exist). A reader holding a Snapshot of an
// older generation reads data that is no longer current.
func LatestGeneration(dir, table string) (int64, error) {
	gens, err := generations(manifestsDir(dir, table))
	if err != nil || len(gens) == 0 {
		return 0, err
	}
	return gens[len(gens)-1], nil
}

// Snapshot is one generation of a table, pinned for reading: the part
// files that held the table's rows when the generation was published, each
// row in exactly one of them.
//
// The contract between the Store (the one writer) and its readers, in this
// process or any other on the same machine:
//
//   - Every change to a table's parts (a flush, the merges after it) is
//     published as a new generation: a manifest listing the live parts,
//     written under a temporary name, fsynced, renamed into place and its
//     folder fsynced. Insert returns nil only once a generation lists its
//     rows. A part is written (and fsynced) before the first manifest that
//     lists it.
//   - A merge's new part and the parts it replaces are never both in one
//     generation, so a reader of one generation sees every row it held
//     exactly once, and a later generation holds every row of an earlier
//     one: counts never go down from one snapshot to the next.
//   - A reader holds a shared flock on the manifest it read until Close. The
//     writer removes a manifest other than the newest only while it holds
//     the exclusive flock (which it never waits for), and removes a replaced
//     part only once no remaining manifest lists it. So the files of an open
//     Snapshot stay until it is closed; readers never block the writer, they
//     only delay the removal of replaced parts (until the first flush or
//     Close after the last reader of a generation lets go, or the next
//     Open).
//
// On systems without flock (not unix) readers take no lock, and a replaced
// part may be removed while a reader still reads it, as before generations
// existed.
//
// A store folder written before generations existed (no manifests folder)
// is read as then: Generation is 0 and Files are the *.parquet files found,
// unpinned; the first Open of a Store of this version publishes generation
// 1 with those files.
type Snapshot struct {
	// Generation is the generation read; 0 for a folder with no manifest.
	Generation int64
	// Files are the absolute paths of the generation's part files, by day
	// and then in write order (their names sort by write order too).
	Files []string

	lock *os.File // the manifest, shared-locked; nil for generation 0
}

// OpenSnapshot pins the newest generation of table in the store folder dir
// (see Snapshot). The caller must Close it once done reading its Files.
func OpenSnapshot(dir, table string) (*Snapshot, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("parquetstore snapshot %s: %w", table, err)
	}
	mdir := manifestsDir(dir, table)
	for range snapshotAttempts {
		gens, err := generations(mdir)
		if err != nil {
			return nil, fmt.Errorf("parquetstore snapshot %s: %w", table, err)
		}
		if len(gens) == 0 {
			return legacySnapshot(dir, table)
		}
		s, err := pin(dir, table, filepath.Join(mdir, manifestName(gens[len(gens)-1])))
		if err != nil {
			return nil, fmt.Errorf("parquetstore snapshot %s: %w", table, err)
		}
		if s != nil {
			return s, nil
		}
		// Retired between listing and locking: a newer one is there.
	}
	return nil, fmt.Errorf("parquetstore snapshot %s: no generation stayed current for %d attempts", table, snapshotAttempts)
}

// pin shared-locks the manifest at path and reads it; nil if the writer
// retired it first.
func pin(dir, table, path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := lockShared(f); err != nil {
		f.Close()
		return nil, err
	}
	// The writer removes a manifest only while holding it exclusively: if
	// the name still leads to this file now, it is held and stays.
	held, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if now, err := os.Stat(path); err != nil || !os.SameFile(held, now) {
		f.Close()
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	m, err := decodeManifest(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &Snapshot{Generation: m.Generation, Files: make([]string, len(m.Parts)), lock: f}
	for i, p := range m.Parts {
		s.Files[i] = filepath.Join(dir, table, filepath.FromSlash(p))
	}
	return s, nil
}

// legacySnapshot lists the part files of a table that has no manifest.
func legacySnapshot(dir, table string) (*Snapshot, error) {
	files, err := filepath.Glob(filepath.Join(dir, table, "date=*", "part-*.parquet"))
	if err != nil {
		return nil, fmt.Errorf("parquetstore snapshot %s: %w", table, err)
	}
	return &Snapshot{Files: files}, nil
}

// Close unpins the snapshot: the writer may remove its files from now on.
// Close is idempotent.
func (s *Snapshot) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Package localstore is the embedded vector store for `make run` and
// single-node shops: pipeline.VectorStore kept in a data directory.
//
// Each collection holds its vectors normalised to unit length in a float32
// slab. Below Config.ExactThreshold points a search scans every point
// (split across cores, filters applied during the scan); at and above it the
// collection keeps an HNSW graph, searched with filters applied during the
// walk (or by an exact scan when a filter leaves few points).
//
// Durability: every Upsert and Delete is appended to the collection's
// write-ahead log (length-prefixed, CRC-32C-checked frames) and fsynced
// before it returns. When the log passes Config.WALMaxBytes, the collection
// is written to a snapshot (temporary file, fsync, atomic rename, including
// the graph) and the log is emptied. Open loads the snapshot, replays the
// log and cuts off a torn last record. Aliases live in aliases.json,
// replaced atomically.
//
// Layout: dir/LOCK, dir/aliases.json, dir/collections/<name>/{meta.json,
// snapshot.bin, wal.log}.
package localstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/streamrec/streamrec/internal/dirlock"
	"github.com/streamrec/streamrec/pipeline"
)

// Errors the store returns besides pipeline's.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("localstore: store closed")
	// ErrName: a collection or alias name is not usable as a file name.
	ErrName = errors.New("localstore: invalid name (want [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 bytes)")
	// ErrLocked: another process has the data directory open.
	ErrLocked = errors.New("localstore: data directory in use by another process")
)

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

var _ pipeline.VectorStore = (*Store)(nil)

// Store is an embedded pipeline.VectorStore. It is safe for concurrent use.
type Store struct {
	dir  string
	cfg  Config
	log  *slog.Logger
	lock *os.File

	mu      sync.RWMutex
	closed  bool
	cols    map[string]*collection
	aliases map[string]string // alias -> collection
}

type collectionMeta struct {
	Dim int `json:"dim"`
}

// Open opens (creating) the store in dir, loading every collection. Only
// one process may have a directory open.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{cfg: DefaultConfig()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.cfg.Validate("vectorstore.local"); err != nil {
		return nil, err
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(dir, "collections"), 0o755); err != nil {
		return nil, fmt.Errorf("open vector store %s: %w", dir, err)
	}
	lock, err := lockDir(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("open vector store %s: %w", dir, err)
	}
	s := &Store{dir: dir, cfg: o.cfg, log: o.log, lock: lock, cols: map[string]*collection{}, aliases: map[string]string{}}
	if err := s.load(); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("open vector store %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) load() error {
	root := filepath.Join(s.dir, "collections")
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !validName.MatchString(e.Name()) {
			if e.IsDir() {
				_ = os.RemoveAll(filepath.Join(root, e.Name())) // a half-created or half-dropped one
			}
			continue
		}
		cdir := filepath.Join(root, e.Name())
		raw, err := os.ReadFile(filepath.Join(cdir, metaFile))
		if err != nil {
			return fmt.Errorf("collection %s: %w", e.Name(), err)
		}
		var m collectionMeta
		if err := json.Unmarshal(raw, &m); err != nil || m.Dim <= 0 {
			return fmt.Errorf("collection %s: bad %s: %v", e.Name(), metaFile, err)
		}
		c := newCollection(e.Name(), cdir, m.Dim, s.cfg, s.log)
		if err := c.load(); err != nil {
			return err
		}
		s.cols[c.name] = c
	}
	raw, err := os.ReadFile(filepath.Join(s.dir, "aliases.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err == nil {
		if err := json.Unmarshal(raw, &s.aliases); err != nil {
			return fmt.Errorf("aliases.json: %w", err)
		}
	}
	for a, c := range s.aliases {
		if _, ok := s.cols[c]; !ok {
			delete(s.aliases, a) // its collection was dropped before the alias file was rewritten
		}
	}
	return nil
}

// Close flushes nothing (every acknowledged write is already durable) and
// releases the directory. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeAll()
}

func (s *Store) closeAll() error {
	var errs []error
	for _, c := range s.cols {
		errs = append(errs, c.close(ErrClosed))
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// resolve finds the collection name or an alias names.
func (s *Store) resolve(name string) (*collection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if target, ok := s.aliases[name]; ok {
		name = target
	}
	c, ok := s.cols[name]
	if !ok {
		return nil, fmt.Errorf("collection %q: %w", name, pipeline.ErrNoCollection)
	}
	return c, nil
}

// EnsureCollection creates the collection with vectors of dim unless it
// exists; an existing one with another dim is an ErrDimension error.
func (s *Store) EnsureCollection(ctx context.Context, name string, dim int) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("ensure collection %q: %w", name, ErrName)
	}
	if dim <= 0 {
		return fmt.Errorf("ensure collection %q: dim %d must be > 0: %w", name, dim, pipeline.ErrDimension)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if c, ok := s.cols[name]; ok {
		if c.dim != dim {
			return fmt.Errorf("ensure collection %q with dim %d: it has dim %d: %w", name, dim, c.dim, pipeline.ErrDimension)
		}
		return nil
	}
	root := filepath.Join(s.dir, "collections")
	tmp := filepath.Join(root, ".new-"+name)
	final := filepath.Join(root, name)
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("ensure collection %q: %w", name, err)
	}
	raw, _ := json.Marshal(collectionMeta{Dim: dim})
	if err := writeFileAtomic(filepath.Join(tmp, metaFile), raw); err != nil {
		return fmt.Errorf("ensure collection %q: %w", name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("ensure collection %q: %w", name, err)
	}
	if err := syncDir(root); err != nil {
		return fmt.Errorf("ensure collection %q: %w", name, err)
	}
	c := newCollection(name, final, dim, s.cfg, s.log)
	if err := c.load(); err != nil {
		return fmt.Errorf("ensure collection %q: %w", name, err)
	}
	s.cols[name] = c
	return nil
}

// Upsert stores points, replacing those with the same IDs; durable when it
// returns nil.
func (s *Store) Upsert(ctx context.Context, collection string, points []pipeline.Point) error {
	c, err := s.resolve(collection)
	if err != nil {
		return err
	}
	return c.upsert(ctx, points)
}

// Delete removes the points with ids (missing ones are skipped); durable
// when it returns nil.
func (s *Store) Delete(ctx context.Context, collection string, ids []string) error {
	c, err := s.resolve(collection)
	if err != nil {
		return err
	}
	return c.delete(ctx, ids)
}

// Get returns the points with ids that exist, in the order asked, with
// their vectors normalised to unit length.
func (s *Store) Get(ctx context.Context, collection string, ids []string) ([]pipeline.Point, error) {
	c, err := s.resolve(collection)
	if err != nil {
		return nil, err
	}
	return c.get(ids), nil
}

// Search returns up to q.K points nearest q.Vector by cosine similarity that
// pass q.Filter, best first.
func (s *Store) Search(ctx context.Context, collection string, q pipeline.VectorQuery) ([]pipeline.Hit, error) {
	c, err := s.resolve(collection)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.search(q)
}

// Count returns the number of points in a collection (or an alias's).
func (s *Store) Count(ctx context.Context, collection string) (int, error) {
	c, err := s.resolve(collection)
	if err != nil {
		return 0, err
	}
	return c.count(), nil
}

// SetAlias points alias at collection, replacing its old target; durable
// when it returns nil.
func (s *Store) SetAlias(ctx context.Context, alias, collection string) error {
	if !validName.MatchString(alias) {
		return fmt.Errorf("set alias %q: %w", alias, ErrName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.cols[collection]; !ok {
		return fmt.Errorf("set alias %q to %q: %w", alias, collection, pipeline.ErrNoCollection)
	}
	old, had := s.aliases[alias]
	s.aliases[alias] = collection
	if err := s.saveAliases(); err != nil {
		if had {
			s.aliases[alias] = old
		} else {
			delete(s.aliases, alias)
		}
		return fmt.Errorf("set alias %q to %q: %w", alias, collection, err)
	}
	return nil
}

// ResolveAlias returns the collection alias points at, or ErrNoCollection.
func (s *Store) ResolveAlias(ctx context.Context, alias string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return "", ErrClosed
	}
	c, ok := s.aliases[alias]
	if !ok {
		return "", fmt.Errorf("alias %q: %w", alias, pipeline.ErrNoCollection)
	}
	return c, nil
}

// DropCollection deletes a collection (by its own name, not an alias) and
// the aliases that point at it.
func (s *Store) DropCollection(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	c, ok := s.cols[name]
	if !ok {
		return fmt.Errorf("drop collection %q: %w", name, pipeline.ErrNoCollection)
	}
	gone := fmt.Errorf("collection %q was dropped: %w", name, pipeline.ErrNoCollection)
	if err := c.close(gone); err != nil {
		s.log.Warn("vector store: closing dropped collection", "collection", name, "err", err)
	}
	delete(s.cols, name)
	if err := removeDir(c.dir); err != nil {
		return fmt.Errorf("drop collection %q: %w", name, err)
	}
	changed := false
	for a, target := range s.aliases {
		if target == name {
			delete(s.aliases, a)
			changed = true
		}
	}
	if changed {
		if err := s.saveAliases(); err != nil {
			return fmt.Errorf("drop collection %q: aliases: %w", name, err)
		}
	}
	return nil
}

func (s *Store) saveAliases() error {
	raw, err := json.MarshalIndent(s.aliases, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "aliases.json"), raw)
}

// lockDir locks the folder's lock file (internal/dirlock), reporting
// another holder as ErrLocked.
func lockDir(path string) (*os.File, error) {
	f, err := dirlock.Lock(path)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, ErrLocked
	}
	return f, err
}

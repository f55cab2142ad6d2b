package localstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/pipeline/vectorstoretest"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(killHelper(os.Getenv(helperEnv)))
	}
	goleak.VerifyTestMain(m)
}

func openT(t *testing.T, dir string, cfg Config) *Store {
	t.Helper()
	s, err := Open(dir, WithConfig(cfg))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	indexed := DefaultConfig()
	indexed.ExactThreshold = 0 // every collection uses the graph
	snapshotting := DefaultConfig()
	snapshotting.WALMaxBytes = 512 // a snapshot every few writes
	cases := []struct {
		name string
		cfg  Config
	}{
		{"exact", DefaultConfig()},
		{"hnsw", indexed},
		{"snapshots", snapshotting},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vectorstoretest.Run(t, func(t *testing.T) pipeline.VectorStore {
				s := openT(t, t.TempDir(), tc.cfg)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"wal", func(c *Config) { c.WALMaxBytes = 0 }, "vectorstore.local.wal_max_bytes must be > 0"},
		{"threshold", func(c *Config) { c.ExactThreshold = -1 }, "vectorstore.local.exact_threshold must be >= 0"},
		{"m", func(c *Config) { c.HNSWM = 0 }, "vectorstore.local.hnsw_m must be > 1"},
		{"m big", func(c *Config) { c.HNSWM = 1000 }, "vectorstore.local.hnsw_m must be <= 128"},
		{"efc", func(c *Config) { c.HNSWEfConstruction = 0 }, "vectorstore.local.hnsw_ef_construction must be > 0"},
		{"ef", func(c *Config) { c.HNSWEfSearch = 0 }, "vectorstore.local.hnsw_ef_search must be > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate("vectorstore.local")
			if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Open(t.TempDir(), WithConfig(Config{})); err == nil {
		t.Fatal("Open with a zero Config: want an error")
	}
}

func randPoints(r *rand.Rand, prefix string, n, dim int) []pipeline.Point {
	pts := make([]pipeline.Point, n)
	for i := range pts {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		pts[i] = pipeline.Point{ID: fmt.Sprintf("%s%d", prefix, i), Vector: v, Payload: pipeline.Payload{
			pipeline.PayloadBrand: fmt.Sprint("b", i%3), pipeline.PayloadPrice: float64(i), pipeline.PayloadUpdatedAt: int64(i),
		}}
	}
	return pts
}

// checkPresent fails unless every point is in coll with its vector.
func checkPresent(t *testing.T, s *Store, coll string, pts []pipeline.Point) {
	t.Helper()
	idList := make([]string, len(pts))
	for i, p := range pts {
		idList[i] = p.ID
	}
	got, err := s.Get(context.Background(), coll, idList)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	byID := map[string]pipeline.Point{}
	for _, p := range got {
		byID[p.ID] = p
	}
	for _, p := range pts {
		g, ok := byID[p.ID]
		if !ok {
			t.Fatalf("%s missing", p.ID)
		}
		if !slices.Equal(g.Vector, normalized(p.Vector)) {
			t.Fatalf("%s: vector changed", p.ID)
		}
	}
}

func TestReopen(t *testing.T) {
	for _, tc := range []struct {
		name      string
		walMax    int64
		threshold int
	}{
		{"log only", 64 << 20, 20000},
		{"snapshot exact", 4 << 10, 20000},
		{"snapshot hnsw", 4 << 10, 50},
		{"log hnsw", 64 << 20, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			cfg := DefaultConfig()
			cfg.WALMaxBytes, cfg.ExactThreshold = tc.walMax, tc.threshold
			s := openT(t, dir, cfg)
			r := rand.New(rand.NewPCG(1, 2))
			pts := randPoints(r, "p", 300, 16)
			for i := 0; i < len(pts); i += 50 {
				if err := s.EnsureCollection(ctx, "v1", 16); err != nil {
					t.Fatal(err)
				}
				if err := s.Upsert(ctx, "v1", pts[i:i+50]); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete(ctx, "v1", []string{"p0", "p1"}); err != nil {
				t.Fatal(err)
			}
			moved := randPoints(r, "p", 3, 16)[2:] // p2 with a new vector
			if err := s.Upsert(ctx, "v1", moved); err != nil {
				t.Fatal(err)
			}
			if err := s.EnsureCollection(ctx, "v2", 4); err != nil {
				t.Fatal(err)
			}
			if err := s.EnsureCollection(ctx, "dropped", 4); err != nil {
				t.Fatal(err)
			}
			if err := s.SetAlias(ctx, "items", "v1"); err != nil {
				t.Fatal(err)
			}
			if err := s.SetAlias(ctx, "old", "dropped"); err != nil {
				t.Fatal(err)
			}
			if err := s.DropCollection(ctx, "dropped"); err != nil {
				t.Fatal(err)
			}
			q := pipeline.VectorQuery{Vector: pts[100].Vector, K: 10, Filter: pipeline.Filter{Brand: "b1"}}
			before, err := s.Search(ctx, "items", q)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Count(ctx, "v1"); !errors.Is(err, ErrClosed) {
				t.Fatalf("Count after Close = %v, want ErrClosed", err)
			}

			s = openT(t, dir, cfg)
			defer s.Close()
			if got, err := s.ResolveAlias(ctx, "items"); err != nil || got != "v1" {
				t.Fatalf("ResolveAlias after reopen = %q, %v", got, err)
			}
			if _, err := s.ResolveAlias(ctx, "old"); !errors.Is(err, pipeline.ErrNoCollection) {
				t.Fatalf("alias of a dropped collection after reopen = %v", err)
			}
			if _, err := s.Count(ctx, "dropped"); !errors.Is(err, pipeline.ErrNoCollection) {
				t.Fatalf("dropped collection after reopen: %v", err)
			}
			if n, err := s.Count(ctx, "v2"); err != nil || n != 0 {
				t.Fatalf("Count(v2) = %d, %v", n, err)
			}
			if n, err := s.Count(ctx, "items"); err != nil || n != 298 {
				t.Fatalf("Count(items) = %d, %v; want 298", n, err)
			}
			checkPresent(t, s, "v1", append(pts[3:], moved...))
			got, err := s.Get(ctx, "v1", []string{"p0", "p1", "p2"})
			if err != nil || len(got) != 1 || got[0].Payload[pipeline.PayloadUpdatedAt] != int64(2) {
				t.Fatalf("Get deleted and moved = %v, %v", got, err)
			}
			after, err := s.Search(ctx, "items", q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(before, after, func(a, b pipeline.Hit) bool { return a.ID == b.ID && a.Score == b.Score }) {
				t.Fatalf("search after reopen\n%v\nwant\n%v", after, before)
			}
			// Writable after reopen.
			if err := s.Upsert(ctx, "v1", pts[:1]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLockedDir(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, DefaultConfig())
	defer s.Close()
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestTornLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir, DefaultConfig())
	if err := s.EnsureCollection(ctx, "c", 8); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	pts := randPoints(r, "p", 30, 8)
	for i := 0; i < 30; i += 10 {
		if err := s.Upsert(ctx, "c", pts[i:i+10]); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	log := filepath.Join(dir, "collections", "c", walFile)
	info, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the last record in half, as a crash mid-write would.
	third := info.Size() / 3
	if err := os.Truncate(log, info.Size()-third/2); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, DefaultConfig())
	checkPresent(t, s, "c", pts[:20])
	if n, _ := s.Count(ctx, "c"); n != 20 {
		t.Fatalf("Count = %d, want 20", n)
	}
	// Appends after the cut replay too.
	if err := s.Upsert(ctx, "c", pts[20:]); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A flipped byte in the last record: the CRC catches it.
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-5] ^= 0xff
	if err := os.WriteFile(log, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, DefaultConfig())
	defer s.Close()
	checkPresent(t, s, "c", pts[:20])
	if n, _ := s.Count(ctx, "c"); n != 20 {
		t.Fatalf("Count after corrupt tail = %d, want 20", n)
	}
}

// The kill -9 test: a child process upserts batches and prints each
// batch's first id once Upsert has returned; the parent kills it mid-stream
// and checks that every acknowledged batch survived.
const helperEnv = "LOCALSTORE_KILL_HELPER_DIR"

const killDim = 32

func killBatch(b int) []pipeline.Point {
	return randPoints(rand.New(rand.NewPCG(uint64(b), 77)), fmt.Sprintf("b%d-", b), 20, killDim)
}

// killHelper runs in the child: it writes until killed.
func killHelper(dir string) int {
	cfg := DefaultConfig()
	cfg.WALMaxBytes = 256 << 10 // snapshots happen while being killed, too
	cfg.ExactThreshold = 500
	s, err := Open(dir, WithConfig(cfg))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	if err := s.EnsureCollection(ctx, "c", killDim); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w := bufio.NewWriter(os.Stdout)
	for b := 0; ; b++ {
		if err := s.Upsert(ctx, "c", killBatch(b)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintf(w, "ack %d\n", b)
		w.Flush()
	}
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acked := -1
	const want = 150 // batches acknowledged before the kill
	for acked < want && sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "ack %d", &acked); err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // acknowledged between our last read and the kill
		fmt.Sscanf(sc.Text(), "ack %d", &acked)
	}
	_ = cmd.Wait()
	if acked < want {
		t.Fatalf("child acknowledged only %d batches; stderr: %s", acked+1, stderr.String())
	}

	cfg := DefaultConfig()
	cfg.ExactThreshold = 500
	s := openT(t, dir, cfg)
	defer s.Close()
	for b := 0; b <= acked; b++ {
		checkPresent(t, s, "c", killBatch(b))
	}
	n, err := s.Count(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if n < (acked+1)*20 {
		t.Fatalf("Count = %d, want at least %d", n, (acked+1)*20)
	}
	t.Logf("killed after %d acknowledged batches; %d points recovered", acked+1, n)
}

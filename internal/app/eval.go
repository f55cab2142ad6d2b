package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streamrec/streamrec/consumers/catalog"
	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/internal/eval"
	pbar "github.com/streamrec/streamrec/internal/progress"
	"github.com/streamrec/streamrec/pipeline"
	"github.com/streamrec/streamrec/producers/movielens"
	"github.com/streamrec/streamrec/producers/reco"
	"github.com/streamrec/streamrec/schemas"
)

// EvalOptions configures an offline evaluation (`streamrec eval`, make
// eval).
type EvalOptions struct {
	// Dataset is the ratings CSV scripts/movielens.sh exports.
	Dataset string
	// Holdout is the fraction of each user's ratings, the latest, held out.
	Holdout float64
	// Positive is the least rating of a relevant held-out item.
	Positive float64
	// MinTrain is the fewest training ratings of an evaluated user.
	MinTrain int
	// Validation evaluates on a validation split instead of the test
	// split: the test ratings are dropped and the same hold-out is taken
	// again from what remains, so settings chosen on it have never seen the
	// test ratings.
	Validation bool
	// Users, if > 0, evaluates on the ratings of that many users only (the
	// ones with the lowest ids; the catalog is the movies they rated): a
	// quick subset for tests.
	Users int
	// Movies, if > 0, keeps only the ratings of that many most-rated movies
	// (ties: lowest id), and those movies as the catalog: a quick, dense
	// subset for tests (applied after Users).
	Movies int
	// Neighbours is the item-kNN baseline's neighbourhood size.
	Neighbours int
	// Concurrency is how many for_user requests are in flight at once.
	Concurrency int
	// Progress gets progress bars; nil draws none.
	Progress io.Writer
}

// DefaultEvalOptions: the last 20 % of each user's ratings held out,
// relevant from 3.5 stars, users with at least 5 training ratings, item-kNN
// with 50 neighbours, 16 requests in flight.
func DefaultEvalOptions() EvalOptions {
	return EvalOptions{
		Dataset:     ".cache/datasets/movielens/ratings.csv",
		Holdout:     0.2,
		Positive:    3.5,
		MinTrain:    5,
		Neighbours:  50,
		Concurrency: 16,
	}
}

// Validate reports every invalid option, named by its flag.
func (o EvalOptions) Validate() error {
	var errs []error
	if !(o.Holdout > 0 && o.Holdout < 1) {
		errs = append(errs, fmt.Errorf("eval: --holdout must be within (0, 1), got %v", o.Holdout))
	}
	if !(o.Positive > 0 && o.Positive <= 5) {
		errs = append(errs, fmt.Errorf("eval: --positive must be within (0, 5] stars, got %v", o.Positive))
	}
	if o.MinTrain < 1 {
		errs = append(errs, fmt.Errorf("eval: --min-train must be >= 1, got %d", o.MinTrain))
	}
	if o.Users < 0 || o.Movies < 0 {
		errs = append(errs, fmt.Errorf("eval: --users and --movies must be >= 0"))
	}
	if o.Neighbours < 1 {
		errs = append(errs, fmt.Errorf("eval: --neighbours must be >= 1, got %d", o.Neighbours))
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("eval: --concurrency must be >= 1, got %d", o.Concurrency))
	}
	return errors.Join(errs...)
}

// EvalReport is what Eval measured.
type EvalReport struct {
	// Results: the pipeline's for_user first, then the baselines.
	Results []eval.Result
	// Movies, Ratings and TrainEvents describe the run: the catalog size,
	// the ratings used and the clickstream events replayed.
	Movies, Ratings, TrainEvents int
	// Fallback counts for_user replies answered from popularity (cold
	// users); Errors counts error replies (scored as empty lists).
	Fallback, Errors int
	// Took is the wall time of each phase.
	Took map[string]time.Duration
}

// Eval evaluates the pipeline's for_user recommendations offline on
// MovieLens (internal/eval's protocol): it runs the whole pipeline in a
// sandbox (an in-memory embedded broker on a free port, the embedded vector
// store in a temporary folder, no analytics, no rate guard), seeds the
// catalog and waits until it is embedded, replays the training ratings as
// clickstream events through Kafka, waits until the clickstream consumer
// and the serving consumer's follower have applied them, then asks the
// serving consumer for_user, over Kafka, for 20 items for every test user,
// excluding the user's training items. The baselines (popularity, item-kNN,
// content on the catalog's vectors as the pipeline stored them) run on the
// same split. The config's model, embed, profiles, popularity,
// co-occurrence and serving sections apply; where the data lives does not.
func Eval(ctx context.Context, cfg config.Config, log *slog.Logger, o EvalOptions) (EvalReport, error) {
	if err := o.Validate(); err != nil {
		return EvalReport{}, err
	}
	ds, err := movielens.Load(o.Dataset)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return EvalReport{}, fmt.Errorf("eval: %s not found; run scripts/movielens.sh (make eval does): %w", o.Dataset, err)
		}
		return EvalReport{}, fmt.Errorf("eval: %w", err)
	}
	if o.Users > 0 {
		ds = subset(ds, o.Users)
	}
	if o.Movies > 0 {
		ds = topMovies(ds, o.Movies)
	}
	split := eval.NewSplit(ds, o.Holdout, o.Positive, o.MinTrain)
	if o.Validation {
		ds = &movielens.Dataset{Movies: ds.Movies, Ratings: split.Train}
		split = eval.NewSplit(ds, o.Holdout, o.Positive, o.MinTrain)
	}
	if len(split.Test) == 0 {
		return EvalReport{}, errors.New("eval: no user to evaluate (too few ratings per user for the hold-out)")
	}
	dir, err := os.MkdirTemp("", "streamrec-eval-")
	if err != nil {
		return EvalReport{}, err
	}
	defer os.RemoveAll(dir)
	cfg = sandbox(cfg, dir)
	if err := cfg.Validate(); err != nil {
		return EvalReport{}, fmt.Errorf("eval sandbox config: %w", err)
	}
	if !cfg.Embed.Enabled {
		return EvalReport{}, errors.New("eval: embed.enabled is false; the pipeline needs the model")
	}

	rep := EvalReport{Movies: len(ds.Movies), Ratings: len(ds.Ratings), Took: map[string]time.Duration{}}
	job := func(ctx context.Context, env JobEnv) error {
		lists, err := evalPipeline(ctx, env, log, ds, split, o, &rep)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, eval.Evaluate("streamrec for_user", split, len(ds.Movies), func(u string, _ int) []string { return lists[u] }))
		start := time.Now()
		vectors, err := itemVectors(ctx, env.Store, ds)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results,
			eval.Evaluate("popularity", split, len(ds.Movies), eval.Popularity(split.Train)),
			eval.Evaluate(fmt.Sprintf("item-kNN (%d neighbours)", o.Neighbours), split, len(ds.Movies), eval.ItemKNN(split.Train, o.Neighbours)),
			// The same with the pipeline's recency (cooccurrence.window and
			// recency_decay), exact and offline.
			eval.Evaluate(fmt.Sprintf("item-kNN, latest %d items, decay %g", env.Config.CoOccurrence.Window, env.Config.CoOccurrence.RecencyDecay), split, len(ds.Movies),
				eval.RecentItemKNN(split.Train, o.Neighbours, env.Config.CoOccurrence.Window, env.Config.CoOccurrence.RecencyDecay)),
			eval.Evaluate("content (title+genres embeddings)", split, len(ds.Movies), eval.Content(split.Train, vectors, o.Positive)),
		)
		rep.Took["baselines"] = time.Since(start)
		return nil
	}
	if err := Run(ctx, cfg, log, Options{Broker: true, Kinds: []Kind{KindClickstream, KindCatalog, KindServing}, Job: job}); err != nil {
		return rep, err
	}
	if len(rep.Results) == 0 {
		return rep, fmt.Errorf("eval: interrupted: %w", context.Cause(ctx))
	}
	return rep, nil
}

// sandbox points cfg at a private embedded setup in dir and lifts what a
// replay of 21 years squeezed into 28 days would trip over.
func sandbox(cfg config.Config, dir string) config.Config {
	cfg.Broker.Embedded = true
	cfg.Broker.Port = 0
	cfg.Broker.DataDir = "" // in memory
	cfg.VectorStore.Backend = "local"
	cfg.VectorStore.DataDir = dir + "/vectors"
	cfg.Analytics.Backend = "none"
	cfg.Metrics.Addr = ""
	// Squeezed, a user's rating sessions arrive at bot speed.
	cfg.Clickstream.Quality.RateLimit.EventsPerSecond = 0
	// The harness excludes each user's training items in the request, as
	// a shop passes what a user already owns.
	cfg.Limits.MaxExclude = max(cfg.Limits.MaxExclude, 5000)
	cfg.Limits.MaxBytes = max(cfg.Limits.MaxBytes, 256<<10)
	// A request waits behind the others of its batch: no deadline error
	// replies for a busy CPU.
	cfg.Serving.Server.DefaultDeadline = max(cfg.Serving.Server.DefaultDeadline, time.Minute)
	cfg.Derive()
	return cfg
}

// subset keeps the ratings of the n users with the lowest ids and the
// movies they rated. (Choosing by all ratings, held-out ones included, only
// decides which catalog a test subset has; no recommender sees them.)
func subset(ds *movielens.Dataset, n int) *movielens.Dataset {
	var ids []int
	seen := map[int]bool{}
	for _, r := range ds.Ratings {
		if !seen[r.UserID] {
			seen[r.UserID] = true
			ids = append(ids, r.UserID)
		}
	}
	slices.Sort(ids)
	keep := map[int]bool{}
	for _, id := range ids[:min(n, len(ids))] {
		keep[id] = true
	}
	out := &movielens.Dataset{}
	rated := map[int]bool{}
	for _, r := range ds.Ratings {
		if keep[r.UserID] {
			out.Ratings = append(out.Ratings, r)
			rated[r.MovieID] = true
		}
	}
	for _, m := range ds.Movies {
		if rated[m.ID] {
			out.Movies = append(out.Movies, m)
		}
	}
	return out
}

// topMovies keeps the n most-rated movies (ties: lowest id) and their
// ratings. The count includes held-out ratings: it only decides which
// catalog a test subset has, and every recommender gets the same one.
func topMovies(ds *movielens.Dataset, n int) *movielens.Dataset {
	count := map[int]int{}
	for _, r := range ds.Ratings {
		count[r.MovieID]++
	}
	ids := make([]int, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int) int {
		if c := cmp.Compare(count[b], count[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	keep := map[int]bool{}
	for _, id := range ids[:min(n, len(ids))] {
		keep[id] = true
	}
	out := &movielens.Dataset{}
	for _, m := range ds.Movies {
		if keep[m.ID] {
			out.Movies = append(out.Movies, m)
		}
	}
	for _, r := range ds.Ratings {
		if keep[r.MovieID] {
			out.Ratings = append(out.Ratings, r)
		}
	}
	return out
}

// evalPipeline seeds, replays and asks; it returns each test user's list.
func evalPipeline(ctx context.Context, env JobEnv, log *slog.Logger, ds *movielens.Dataset, split eval.Split, o EvalOptions, rep *EvalReport) (map[string][]string, error) {
	cfg := env.Config
	p, cl, err := newProducer(cfg, log)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	start := time.Now()
	if err := seedMovies(ctx, p, env.Store, ds, o.Progress); err != nil {
		return nil, err
	}
	rep.Took["catalog"] = time.Since(start)

	// The training ratings, with the times the whole dataset squeezes to.
	start = time.Now()
	train := &movielens.Dataset{Movies: ds.Movies, Ratings: split.Train}
	events, err := train.ClickEvents(ds.SqueezeInto(time.Now(), movielens.Window))
	if err != nil {
		return nil, err
	}
	rep.TrainEvents = len(events)
	if err := sendClicks(ctx, p, events, o.Progress, "replaying training ratings"); err != nil {
		return nil, err
	}
	if err := waitConsumed(ctx, cl, cfg.Clickstream.Group, cfg.Topics.Clickstream.Name, env.Followed, int64(len(events)), o.Progress); err != nil {
		return nil, err
	}
	rep.Took["replay"] = time.Since(start)

	start = time.Now()
	lists, err := askForUsers(ctx, cfg, log, split, o, rep)
	rep.Took["requests"] = time.Since(start)
	return lists, err
}

// askForUsers asks for_user for 20 items for every test user, excluding
// their training items (newest first, up to limits.max_exclude).
func askForUsers(ctx context.Context, cfg config.Config, log *slog.Logger, split eval.Split, o EvalOptions, rep *EvalReport) (map[string][]string, error) {
	client, err := newRecoClient(ctx, cfg, log, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	defer client.Close()

	seen := map[string][]string{} // user -> training items, newest first
	for i := len(split.Train) - 1; i >= 0; i-- {
		r := split.Train[i]
		u := movielens.UserID(r.UserID)
		if _, test := split.Test[u]; test {
			seen[u] = append(seen[u], movielens.ItemID(r.MovieID))
		}
	}
	users := make([]string, 0, len(split.Test))
	for u := range split.Test {
		users = append(users, u)
	}
	slices.Sort(users)

	bar := pbar.New(o.Progress, int64(len(users)), "for_user requests", "users")
	defer bar.Finish()
	var mu sync.Mutex
	lists := make(map[string][]string, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, o.Concurrency))
	for _, u := range users {
		g.Go(func() error {
			exclude := seen[u][:min(len(seen[u]), cfg.Limits.MaxExclude)]
			reply, err := client.Recommend(gctx, schemas.RecoRequest{Kind: schemas.KindForUser, UserID: u, K: 20, Exclude: exclude})
			mu.Lock()
			defer mu.Unlock()
			_ = bar.Add(1)
			switch {
			case errors.Is(err, reco.ErrReply):
				rep.Errors++
				log.Warn("eval: error reply", "user", u, "err", err)
				return nil
			case err != nil:
				return fmt.Errorf("eval: for_user %s: %w", u, err)
			}
			if reply.Fallback {
				rep.Fallback++
			}
			for _, it := range reply.Items {
				lists[u] = append(lists[u], it.ItemID)
			}
			return nil
		})
	}
	return lists, g.Wait()
}

// itemVectors reads every movie's vector from the items collection.
func itemVectors(ctx context.Context, store pipeline.VectorStore, ds *movielens.Dataset) (map[string][]float32, error) {
	coll, err := store.ResolveAlias(ctx, catalog.ItemsAlias)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]float32, len(ds.Movies))
	const chunk = 1000
	for i := 0; i < len(ds.Movies); i += chunk {
		ids := make([]string, 0, chunk)
		for _, m := range ds.Movies[i:min(i+chunk, len(ds.Movies))] {
			ids = append(ids, movielens.ItemID(m.ID))
		}
		pts, err := store.Get(ctx, coll, ids)
		if err != nil {
			return nil, fmt.Errorf("eval: read %d item vectors: %w", len(ids), err)
		}
		for _, p := range pts {
			out[p.ID] = p.Vector
		}
	}
	return out, nil
}

package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/streamrec/streamrec/producers"
	"github.com/streamrec/streamrec/producers/movielens"
	"github.com/streamrec/streamrec/schemas"
)

// Demo is what `make run` shows once everything runs: a real catalog
// (MovieLens latest-small: 9,066 movies), real user behaviour replayed as
// the clickstream (100,004 ratings as views, clicks and add_to_carts,
// squeezed into the last 28 days, paced), and live requests and replies.
type Demo struct {
	// Dataset is the ratings CSV scripts/movielens.sh exports.
	Dataset string
	// Rate is the replay's events/s after the demo user's history.
	Rate int
	// Out gets the demo's text; Progress its progress bars.
	Out, Progress io.Writer
}

// runDemo seeds, waits for the catalog to be indexed, replays the first
// 80 % of the other users' ratings at once (the shop's past, which
// co-occurrence learns from) and one user's history, asks for
// recommendations and prints them, then keeps replaying the rest of the
// ratings at d.Rate until done or ctx ends.
func runDemo(ctx context.Context, env JobEnv, log *slog.Logger, d Demo) error {
	cfg, store := env.Config, env.Store
	ds, err := movielens.Load(d.Dataset)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(d.Out, "demo: %s not found; run scripts/movielens.sh (make run does) for the MovieLens demo\n", d.Dataset)
			return nil
		}
		return fmt.Errorf("demo dataset: %w", err)
	}
	p, cl, err := newProducer(cfg, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	fmt.Fprintf(d.Out, "\ndemo: seeding the catalog with %d MovieLens movies (re-seeding is harmless)\n", len(ds.Movies))
	if err := seedMovies(ctx, p, store, ds, d.Progress); err != nil {
		return err
	}

	events, err := ds.ClickEvents(ds.SqueezeInto(time.Now(), movielens.Window))
	if err != nil {
		return err
	}
	// Squeezed, a user's rating sessions arrive at bot speed; spaced out,
	// the rate guard (clickstream.quality.rate_limit) keeps them, and so
	// the serving consumer's follower, which keeps what the clickstream
	// consumer keeps, learns co-occurrence from them.
	if rate := cfg.Clickstream.Quality.RateLimit.EventsPerSecond; rate > 0 {
		spaceOut(events, time.Duration(float64(time.Second)*2/rate)) // half the allowed rate
	}
	user := demoUser(ds)
	var mine, rest []schemas.ClickEvent
	for _, ev := range events {
		if ev.UserID == user {
			mine = append(mine, ev)
		} else {
			rest = append(rest, ev)
		}
	}
	// The shop's past first, as fast as it goes: the serving consumer's
	// follower learns co-occurrence from it.
	past := rest[:len(rest)*8/10]
	rest = rest[len(past):]
	if err := sendClicks(ctx, p, past, d.Progress, "the shop's past (80 % of the other users' ratings)"); err != nil {
		return err
	}
	// The demo user's history next, all at once, re-stamped one event a
	// second up to now: squeezed, a user's rating sessions look like a bot
	// to the rate guard (clickstream.quality.rate_limit), which would
	// dead-letter them.
	now := time.Now()
	for i := range mine {
		mine[i].Timestamp = now.Add(-time.Duration(len(mine)-i) * time.Second).UTC()
	}
	if err := sendClicks(ctx, p, mine, nil, ""); err != nil {
		return err
	}
	// Wait until the clickstream consumer and the serving consumer's
	// follower (co-occurrence) have taken all of it in.
	if err := waitConsumed(ctx, cl, cfg.Clickstream.Group, cfg.Topics.Clickstream.Name, env.Followed, int64(len(past)+len(mine)), d.Progress); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fmt.Fprintf(d.Out, "\ndemo: replayed %d events of the shop's past and %d of %s; the other %d events flow at %d events/s in the background\n",
		len(past), len(mine), user, len(rest), d.Rate)
	rctx, rcancel := context.WithCancel(ctx)
	replayDone := make(chan error, 1)
	go func() { replayDone <- replay(rctx, p, rest, d.Rate) }()
	// The replay uses cl: stop it and wait before cl closes.
	defer func() {
		rcancel()
		if replayDone != nil {
			<-replayDone
		}
	}()

	client, err := newRecoClient(ctx, cfg, log, 10*time.Second)
	if err != nil {
		return err
	}
	defer client.Close()

	// Wait until the user's profile is there: a personal (not fallback) reply.
	var reply schemas.RecoReply
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	for deadline := time.Now().Add(time.Minute); (reply.Fallback || reply.RequestID == "") && time.Now().Before(deadline); {
		if reply.RequestID != "" {
			select {
			case <-ctx.Done():
				return nil
			case <-retry.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		reply, err = client.Recommend(ctx, schemas.RecoRequest{Kind: schemas.KindForUser, UserID: user, K: 8})
		if err != nil {
			return fmt.Errorf("demo request: %w", err)
		}
	}
	titles := map[string]string{}
	for _, m := range ds.Movies {
		titles[movielens.ItemID(m.ID)] = m.Name()
	}
	fmt.Fprintf(d.Out, "\n%s liked recently:\n", user)
	n := 0
	for i := len(mine) - 1; i >= 0 && n < 5; i-- {
		if mine[i].Type == schemas.EventAddToCart {
			fmt.Fprintf(d.Out, "  - %s\n", titles[mine[i].ItemID])
			n++
		}
	}
	printReply(d.Out, "for_user "+user, reply, titles)

	search := schemas.RecoRequest{Kind: schemas.KindSearch, Query: "space adventure with robots", K: 5}
	if r, err := client.Recommend(ctx, search); err == nil {
		printReply(d.Out, `search "space adventure with robots"`, r, titles)
	}
	similar := schemas.RecoRequest{Kind: schemas.KindSimilarItems, ItemID: movielens.ItemID(1), K: 5}
	if r, err := client.Recommend(ctx, similar); err == nil {
		printReply(d.Out, "similar_items to "+titles[movielens.ItemID(1)], r, titles)
	}
	addr := strings.Join(cfg.Kafka.Brokers, ",")
	fmt.Fprintf(d.Out, `
Ask by hand with kcat (the reply goes to the topic named in reply-to, which must
exist and match serving.reply_topics, default reco.replies.*; the first command creates
it on a broker that auto-creates topics, as the embedded one does; Apache Kafka reports
the topic unknown the first time while creating it: run it again):
  kcat -C -b %[3]s -t reco.replies.my -X allow.auto.create.topics=true -o end -e -q
  echo '%[1]s|{"request_id":"r-1","kind":"for_user","user_id":"%[2]s","k":5}' \
    | kcat -P -b %[3]s -t %[4]s -K '|' -H reply-to=reco.replies.my -H correlation-id=c-1
  kcat -C -b %[3]s -t reco.replies.my -o beginning -e -f 'headers: %%h\n%%s\n'
or with streamrec:
  bin/streamrec recommend --kind search --query 'romantic comedy in paris' -k 5
Query what happened so far (docs/analytics.md):
  bin/streamrec sql "SELECT kind, count() AS served, avg(latency_ms) FROM recommendations GROUP BY kind"

`, user, user, addr, cfg.Topics.Requests.Name)
	select {
	case err := <-replayDone:
		replayDone = nil
		if err == nil {
			fmt.Fprintf(d.Out, "demo: replay finished (%d events)\n", len(rest))
		}
		return err
	case <-ctx.Done():
		return nil
	}
}

// demoUser picks a user with a readable history: the one with the most 5-star
// ratings among users with 40 to 150 ratings (ties: lowest id).
func demoUser(ds *movielens.Dataset) string {
	total, fives := map[int]int{}, map[int]int{}
	for _, r := range ds.Ratings {
		total[r.UserID]++
		if r.Rating >= 5 {
			fives[r.UserID]++
		}
	}
	best, bestN := 0, -1
	ids := make([]int, 0, len(total))
	for id := range total {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if total[id] >= 40 && total[id] <= 150 && fives[id] > bestN {
			best, bestN = id, fives[id]
		}
	}
	return movielens.UserID(best)
}

// replay sends events in order at rate events/s.
func replay(ctx context.Context, p *producers.Producer, events []schemas.ClickEvent, rate int) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	per := max(1, rate/10)
	for i := 0; i < len(events); i += per {
		for _, ev := range events[i:min(i+per, len(events))] {
			if err := p.SendClick(ctx, ev, nil); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return p.Flush(ctx)
}

func printReply(w io.Writer, what string, r schemas.RecoReply, titles map[string]string) {
	fmt.Fprintf(w, "\nrecommend %s (model %s, fallback %v):\n", what, r.ModelVersion, r.Fallback)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for i, it := range r.Items {
		fmt.Fprintf(tw, "  %d\t%s\t%.3f\t%s\n", i+1, titles[it.ItemID], it.Score, it.Reason)
	}
	_ = tw.Flush()
}

// spaceOut moves events back in time where needed so that each user's
// events are at least gap apart, keeping their order; no event moves
// forward (the decoders refuse timestamps ahead of now).
func spaceOut(events []schemas.ClickEvent, gap time.Duration) {
	next := map[string]time.Time{} // each user's later event's time
	for i := len(events) - 1; i >= 0; i-- {
		ev := &events[i]
		if t, ok := next[ev.UserID]; ok && ev.Timestamp.After(t.Add(-gap)) {
			ev.Timestamp = t.Add(-gap)
		}
		next[ev.UserID] = ev.Timestamp
	}
}

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamrec/streamrec/internal/app"
	"github.com/streamrec/streamrec/internal/eval"
)

func evalCmd(f *flags) *cobra.Command {
	o := app.DefaultEvalOptions()
	var out string
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate for_user offline on MovieLens through the whole pipeline, against baselines (make eval)",
		Long: "Runs the pipeline in a sandbox (in-memory embedded broker, temporary vector store, no analytics),\n" +
			"seeds the MovieLens catalog, replays each user's earlier ratings as clickstream events through Kafka,\n" +
			"asks the serving consumer for_user for 20 items per test user and scores them against the held-out\n" +
			"ratings: Recall@10/20, NDCG@10/20, coverage, beside popularity, item-kNN and content-only baselines\n" +
			"on the same split. See docs/evaluation.md.",
		Example: "  streamrec eval\n  streamrec eval --movies 1000   # a quick, dense subset: the 1,000 most-rated movies\n" +
			"  STREAMREC_SERVING_COLLABORATIVE_WEIGHT=0 streamrec eval   # content-only profiles",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			o.Progress = cmd.ErrOrStderr()
			start := time.Now()
			rep, err := app.Eval(cmd.Context(), cfg, cfg.Logger(cmd.ErrOrStderr()), o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			split := "test"
			if o.Validation {
				split = "validation"
			}
			fmt.Fprintf(w, "\nMovieLens latest-small, %s split: %d movies, %d ratings; last %.0f%% of each user's ratings held out, relevant from %.1f stars; %d training events replayed through Kafka\n\n",
				split, rep.Movies, rep.Ratings, o.Holdout*100, o.Positive, rep.TrainEvents)
			if err := eval.Table(w, rep.Results); err != nil {
				return err
			}
			fmt.Fprintf(w, "\nfor_user replies: %d from popularity (cold users), %d errors. Took %s (catalog %s, replay %s, requests %s, baselines %s)\n",
				rep.Fallback, rep.Errors, time.Since(start).Round(time.Second), rep.Took["catalog"].Round(time.Second),
				rep.Took["replay"].Round(time.Second), rep.Took["requests"].Round(time.Second), rep.Took["baselines"].Round(time.Second))
			if out != "" {
				fh, err := os.Create(out)
				if err != nil {
					return err
				}
				defer fh.Close()
				if err := eval.Table(fh, rep.Results); err != nil {
					return err
				}
				return fh.Close()
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Dataset, "dataset", o.Dataset, "the ratings CSV scripts/movielens.sh writes")
	fl.Float64Var(&o.Holdout, "holdout", o.Holdout, "fraction of each user's ratings, the latest, held out")
	fl.Float64Var(&o.Positive, "positive", o.Positive, "least rating of a relevant held-out movie")
	fl.IntVar(&o.MinTrain, "min-train", o.MinTrain, "fewest training ratings of an evaluated user")
	fl.BoolVar(&o.Validation, "validation", false, "score on a validation split taken from the training ratings (for tuning), not on the test split")
	fl.IntVar(&o.Users, "users", 0, "evaluate on the ratings of this many users only (lowest ids); 0: all")
	fl.IntVar(&o.Movies, "movies", 0, "keep only the ratings of this many most-rated movies; 0: all")
	fl.IntVar(&o.Neighbours, "neighbours", o.Neighbours, "neighbourhood size of the item-kNN baseline")
	fl.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "for_user requests in flight at once")
	fl.StringVar(&out, "out", "", "also write the table (markdown) to this file")
	return cmd
}

package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/spf13/cobra"

	"github.com/streamrec/streamrec/internal/app"
	"github.com/streamrec/streamrec/schemas"
)

func recommendCmd(f *flags) *cobra.Command {
	var (
		req                schemas.RecoRequest
		kind               string
		minPrice, maxPrice float64
		inStock            bool
		timeout            time.Duration
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "recommend",
		Short: "Ask the serving consumer for recommendations over Kafka and print the reply",
		Long: "Sends one request to topics.requests.name with a reply-to header naming a fresh reply topic and a\n" +
			"correlation-id, and prints the reply. Kinds: for_user (--user), similar_items (--item), search (--query).",
		Example: "  streamrec recommend --kind for_user --user user-00042 -k 5\n" +
			"  streamrec recommend --kind search --query 'wireless headphones' --in-stock\n" +
			"  streamrec recommend --kind similar_items --item item-000123 --category Audio",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			req.Kind = schemas.RecoKind(kind)
			fl := cmd.Flags()
			if fl.Changed("min-price") {
				req.Filters.MinPrice = &minPrice
			}
			if fl.Changed("max-price") {
				req.Filters.MaxPrice = &maxPrice
			}
			if fl.Changed("in-stock") {
				req.Filters.InStock = &inStock
			}
			start := time.Now()
			reply, err := app.Recommend(cmd.Context(), cfg, cfg.Logger(cmd.ErrOrStderr()), req, timeout)
			elapsed := time.Since(start)
			if asJSON && reply.RequestID != "" {
				out, _ := json.Marshal(reply)
				fmt.Fprintln(cmd.OutOrStdout(), string(out))
				return err
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "request %s: %d items in %v (model %s, fallback %v)\n", reply.RequestID, len(reply.Items),
				elapsed.Round(time.Millisecond), reply.ModelVersion, reply.Fallback)
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\titem\tscore\treason")
			for i, it := range reply.Items {
				fmt.Fprintf(tw, "%d\t%s\t%.3f\t%s\n", i+1, it.ItemID, it.Score, it.Reason)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kind, "kind", string(schemas.KindForUser), "for_user, similar_items or search")
	fl.StringVar(&req.UserID, "user", "", "user id (for_user)")
	fl.StringVar(&req.ItemID, "item", "", "item id (similar_items)")
	fl.StringVar(&req.Query, "query", "", "search text (search)")
	fl.IntVarP(&req.K, "k", "k", 10, "number of items")
	fl.StringVar(&req.Filters.Category, "category", "", "only items in this category (any level)")
	fl.StringVar(&req.Filters.Brand, "brand", "", "only items of this brand")
	fl.Float64Var(&minPrice, "min-price", 0, "lowest price")
	fl.Float64Var(&maxPrice, "max-price", 0, "highest price")
	fl.BoolVar(&inStock, "in-stock", true, "only items in stock (when given)")
	fl.StringSliceVar(&req.Exclude, "exclude", nil, "item ids never to return")
	fl.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the reply")
	fl.BoolVar(&asJSON, "json", false, "print the reply as JSON")
	return cmd
}

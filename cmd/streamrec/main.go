// Command streamrec runs the streamrec pipeline: an all-in-one `run`, one
// subcommand per consumer kind, the embedded `broker`, and `produce` for
// synthetic traffic. See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/streamrec/streamrec/internal/app"
	"github.com/streamrec/streamrec/internal/config"
	"github.com/streamrec/streamrec/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "streamrec:", err)
		os.Exit(1)
	}
}

// flags are the options every subcommand shares.
type flags struct {
	config   string
	dataDir  string
	logLevel string
	brokers  []string
}

// load reads the config and applies the flags that override it.
func (f *flags) load(cmd *cobra.Command) (config.Config, error) {
	environ := os.Environ()
	if cmd.Flags().Changed("data-dir") {
		environ = append(environ, config.EnvPrefix+"BROKER_DATA_DIR="+f.dataDir)
	}
	if cmd.Flags().Changed("log-level") {
		environ = append(environ, config.EnvPrefix+"LOG_LEVEL="+f.logLevel)
	}
	cfg, err := config.Load(f.config, environ)
	if err != nil {
		return cfg, err
	}
	if cmd.Flags().Changed("brokers") {
		cfg.Kafka.Brokers = f.brokers
		cfg.Broker.Embedded = false
	}
	return cfg, cfg.Validate()
}

func root() *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:           "streamrec",
		Short:         "Streaming recommendations and semantic search for online shops, on Kafka",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.config, "config", os.Getenv(config.EnvConfigFile), "YAML config file (env STREAMREC_CONFIG); STREAMREC_* variables override it")
	pf.StringVar(&f.dataDir, "data-dir", "", "embedded broker data directory (config broker.data_dir, default data/kafka)")
	pf.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (config log.level)")
	pf.StringSliceVar(&f.brokers, "brokers", nil, "external Kafka brokers host:port,... (config kafka.brokers); disables the embedded broker")

	var demo app.Demo
	var withDemo bool
	runKinds := func(use, short string, broker bool, kinds ...app.Kind) *cobra.Command {
		embedder := use == "run"
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, err := f.load(cmd)
				if err != nil {
					return err
				}
				log := cfg.Logger(cmd.ErrOrStderr())
				opts := app.Options{Broker: broker, Kinds: kinds, Embedder: embedder, Banner: cmd.OutOrStdout()}
				if withDemo {
					demo.Out, demo.Progress = cmd.OutOrStdout(), cmd.ErrOrStderr()
					opts.Demo = &demo
				}
				return app.Run(cmd.Context(), cfg, log, opts)
			},
		}
		if use == "run" {
			fl := cmd.Flags()
			fl.BoolVar(&withDemo, "demo", false, "seed the MovieLens catalog, replay its ratings as the clickstream and print live recommendations (make run)")
			fl.StringVar(&demo.Dataset, "demo-dataset", ".cache/datasets/movielens/ratings.csv", "the ratings CSV scripts/movielens.sh writes")
			fl.IntVar(&demo.Rate, "demo-rate", 200, "events/s of the background replay")
		}
		return cmd
	}
	cmd.AddCommand(
		runKinds("run", "Run everything: the embedded broker (unless disabled) and every consumer kind", true, app.KindClickstream, app.KindCatalog, app.KindServing),
		runKinds("broker", "Run only the embedded Kafka broker on 127.0.0.1:9092", true),
		runKinds("clickstream", "Run the clickstream consumer against kafka.brokers", false, app.KindClickstream),
		runKinds("catalog", "Run the catalog consumer against kafka.brokers", false, app.KindCatalog),
		runKinds("serving", "Run the serving consumer (recommendation requests) against kafka.brokers", false, app.KindServing),
		produceCmd(f),
		recommendCmd(f),
		embedCmd(f),
		centerCmd(f),
		reembedCmd(f),
		migrateCmd(f),
		configCmd(f),
		sqlCmd(f),
		evalCmd(f),
	)
	return cmd
}

func produceCmd(f *flags) *cobra.Command {
	var (
		rate     float64
		items    int
		users    int
		events   int
		seed     uint64
		catalog  bool
		duration string
	)
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send realistic synthetic traffic: a catalog, then clickstream sessions at a rate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			env := map[string]string{}
			set := func(flag, key, val string) {
				if fl.Changed(flag) {
					env[key] = val
				}
			}
			set("rate", "PRODUCE_RATE", fmt.Sprint(rate))
			set("duration", "PRODUCE_DURATION", duration)
			set("items", "PRODUCE_ITEMS", fmt.Sprint(items))
			set("users", "PRODUCE_USERS", fmt.Sprint(users))
			set("events", "PRODUCE_EVENTS", fmt.Sprint(events))
			set("seed", "PRODUCE_SEED", fmt.Sprint(seed))
			set("catalog", "PRODUCE_SEND_CATALOG", fmt.Sprint(catalog))
			if len(env) > 0 {
				environ := os.Environ()
				for k, v := range env {
					environ = append(environ, config.EnvPrefix+k+"="+v)
				}
				if cfg, err = config.Load(f.config, environ); err != nil {
					return err
				}
				if fl.Changed("brokers") {
					cfg.Kafka.Brokers = f.brokers
				}
			}
			log := cfg.Logger(cmd.ErrOrStderr())
			rep, err := app.Produce(cmd.Context(), cfg, log, cmd.ErrOrStderr())
			fmt.Fprintln(cmd.OutOrStdout(), rep.String())
			return err
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&rate, "rate", 0, "clickstream events per second (config produce.rate)")
	fl.StringVar(&duration, "duration", "", "how long to send, e.g. 10s (config produce.duration)")
	fl.IntVar(&events, "events", 0, "stop after this many events (config produce.events)")
	fl.IntVar(&items, "items", 0, "catalog size (config produce.items)")
	fl.IntVar(&users, "users", 0, "number of shoppers (config produce.users)")
	fl.Uint64Var(&seed, "seed", 0, "random seed (config produce.seed)")
	fl.BoolVar(&catalog, "catalog", true, "send the catalog first (config produce.send_catalog)")
	return cmd
}

func embedCmd(f *flags) *cobra.Command {
	var query bool
	cmd := &cobra.Command{
		Use:   "embed TEXT [TEXT...]",
		Short: "Embed texts with the configured model and print their cosine similarities",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, texts []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			kind := pipeline.Passage
			if query {
				kind = pipeline.Query
			}
			sim, err := app.Similarity(cmd.Context(), cfg, cfg.Logger(cmd.ErrOrStderr()), kind, texts)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', tabwriter.AlignRight)
			for i := range texts {
				fmt.Fprintf(tw, "[%d]\t", i)
				for j := range texts {
					fmt.Fprintf(tw, "%.3f\t", sim[i][j])
				}
				fmt.Fprintf(tw, " %s\n", texts[i])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&query, "query", false, "embed as search queries (else as item text)")
	return cmd
}

func reembedCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "reembed",
		Short: "Re-embed the whole catalog with the configured model into its own collection, then move the items alias (resumable)",
		Long: "Reads the catalog topic from the start to its current end, embeds every item with the configured model\n" +
			"(embed.onnx.*) into the collection named by that model's version, then points the alias \"items\" there.\n" +
			"Progress is committed as it goes: after an interruption, run it again to continue.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			rep, err := app.Reembed(cmd.Context(), cfg, cfg.Logger(cmd.ErrOrStderr()), cmd.ErrOrStderr())
			fmt.Fprintln(cmd.OutOrStdout(), rep.String())
			return err
		},
	}
}

func migrateCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the ClickHouse migrations (schemas/clickhouse) the configured database has not had yet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			applied, err := app.Migrate(cmd.Context(), cfg, cfg.Logger(cmd.ErrOrStderr()))
			for _, m := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
			}
			if err == nil && len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "up to date")
			}
			return err
		},
	}
}

func centerCmd(f *flags) *cobra.Command {
	var items int
	cmd := &cobra.Command{
		Use:   "center",
		Short: "Compute the embedding model's centring vector (center.json) from the reference corpus; make artifacts runs it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			path, err := app.WriteCenter(cmd.Context(), cfg, items)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
			return nil
		},
	}
	cmd.Flags().IntVar(&items, "items", 500, "catalog items in the reference corpus (two texts each)")
	return cmd
}

func configCmd(f *flags) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Validate the configuration and list every key, its environment variable and its value",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			printKeys(cmd.OutOrStdout(), cfg)
			return nil
		},
	}
}

func printKeys(w io.Writer, cfg config.Config) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENVIRONMENT\tVALUE")
	for _, k := range cfg.Keys() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Path, k.Env, k.Value)
	}
	tw.Flush()
}

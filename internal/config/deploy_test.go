package config

// The deployment files cannot run here (no Docker engine), so these tests
// hold them to the code instead: the example config loads and states the
// defaults, docker-compose.yml sets only real keys and runs only real
// subcommands, and the Dockerfile's entrypoint is the streamrec binary.

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var (
	repoRoot       = filepath.Join("..", "..")
	exampleConfig  = filepath.Join(repoRoot, "deploy", "streamrec.example.yaml")
	composeFile    = filepath.Join(repoRoot, "docker-compose.yml")
	dockerfilePath = filepath.Join(repoRoot, "Dockerfile")
)

// subcommands are streamrec's subcommands. cmd/streamrec is package main and
// cannot be imported, so the list is kept here by hand: update it with
// root() in cmd/streamrec/main.go.
var subcommands = []string{"run", "broker", "clickstream", "catalog", "serving", "produce", "recommend", "migrate", "reembed", "embed", "center", "config", "sql", "eval"}

// envKeys maps every STREAMREC_* variable that names a config key to its
// dotted path.
func envKeys() map[string]string {
	m := map[string]string{}
	for _, k := range Default().Keys() {
		m[k.Env] = k.Path
	}
	return m
}

func TestExampleConfigStatesDefaults(t *testing.T) {
	cfg, err := Load(exampleConfig, nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", exampleConfig, err)
	}
	def, err := Load("", nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	want := map[string]string{}
	for _, k := range def.Keys() {
		want[k.Path] = k.Value
	}
	for _, k := range cfg.Keys() {
		if want[k.Path] != k.Value {
			t.Errorf("%s: example sets %q, default is %q (the example documents the defaults: update %s)",
				k.Path, k.Value, want[k.Path], exampleConfig)
		}
	}

	// Every top-level section of the config appears in the example.
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range def.Keys() {
		section, _, _ := strings.Cut(k.Path, ".")
		if _, ok := doc[section]; !ok {
			t.Errorf("example config has no %s section (key %s)", section, k.Path)
		}
	}
}

// composeDoc is the part of docker-compose.yml the tests read. yaml.v3
// resolves anchors, aliases and `<<` merges while decoding.
type composeDoc struct {
	Version  *string                   `yaml:"version"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string     `yaml:"image"`
	Build       any        `yaml:"build"`
	Command     []string   `yaml:"command"`
	Environment composeEnv `yaml:"environment"`
	Profiles    []string   `yaml:"profiles"`
}

// composeEnv is a service's environment in either of Compose's forms: a
// mapping, or a list of NAME=value (a bare NAME passes the host's value).
type composeEnv map[string]string

// UnmarshalYAML implements yaml.Unmarshaler.
func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	return n.Decode((*map[string]string)(e))
}

// streamrec reports whether s runs the streamrec image.
func (s composeService) streamrec() bool {
	return s.Build != nil || strings.HasPrefix(s.Image, "streamrec")
}

func readCompose(t *testing.T) (composeDoc, *yaml.Node) {
	t.Helper()
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc composeDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return doc, &root
}

// interpolation matches Compose's ${NAME}, ${NAME:-default} and
// ${NAME-default} (and the :? / ? forms, whose text is an error message).
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves s as Compose would in an empty environment.
func interpolate(s string) string {
	s = interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		if strings.HasSuffix(sub[2], "-") {
			return sub[3]
		}
		return ""
	})
	return strings.ReplaceAll(s, "$$", "$")
}

// streamrecVars returns every STREAMREC_* variable that node sets or
// interpolates anywhere in the document (services and x- extensions alike),
// with the line it is on: mapping keys, NAME=value list entries, and
// ${NAME...} references.
func streamrecVars(n *yaml.Node) map[string]int {
	out := map[string]int{}
	var walk func(n *yaml.Node, isKey bool)
	walk = func(n *yaml.Node, isKey bool) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, false)
			}
		case yaml.MappingNode:
			for i, c := range n.Content {
				walk(c, i%2 == 0)
			}
		case yaml.ScalarNode:
			name, _, hasValue := strings.Cut(n.Value, "=")
			if strings.HasPrefix(name, EnvPrefix) && (isKey || hasValue) && !strings.ContainsAny(name, " ${}") {
				out[name] = n.Line
			}
			for _, m := range interpolation.FindAllStringSubmatch(n.Value, -1) {
				if strings.HasPrefix(m[1], EnvPrefix) {
					out[m[1]] = n.Line
				}
			}
		}
	}
	walk(n, false)
	return out
}

func TestComposeSetsOnlyRealKeys(t *testing.T) {
	_, root := readCompose(t)
	keys := envKeys()
	vars := streamrecVars(root)
	for _, must := range []string{"STREAMREC_BROKER_EMBEDDED", "STREAMREC_KAFKA_BROKERS", "STREAMREC_METRICS_ADDR", "STREAMREC_LOG_FORMAT"} {
		if _, ok := vars[must]; !ok {
			t.Errorf("%s does not set %s", composeFile, must)
		}
	}
	for name, line := range vars {
		if _, ok := keys[name]; !ok {
			t.Errorf("%s line %d: %s names no config key (see `streamrec config`)", composeFile, line, name)
		}
	}
}

func TestComposeServices(t *testing.T) {
	doc, _ := readCompose(t)
	if doc.Version != nil {
		t.Errorf("%s has a version key; the Compose specification has none", composeFile)
	}
	for _, name := range []string{"kafka", "qdrant", "clickhouse", "clickstream", "catalog", "produce", "migrate"} {
		if _, ok := doc.Services[name]; !ok {
			t.Errorf("%s has no %s service", composeFile, name)
		}
	}

	var streamrec []string
	for name, s := range doc.Services {
		if !s.streamrec() {
			continue
		}
		streamrec = append(streamrec, name)
		t.Run(name, func(t *testing.T) {
			if len(s.Command) == 0 {
				t.Fatal("no command: the image would run `streamrec run` with its embedded broker")
			}
			if !slices.Contains(subcommands, s.Command[0]) {
				t.Fatalf("command %q: %q is not a streamrec subcommand %v", s.Command, s.Command[0], subcommands)
			}

			// The environment must load as it stands, with Compose's
			// defaults for ${...} references.
			var environ []string
			for k, v := range s.Environment {
				environ = append(environ, k+"="+interpolate(v))
			}
			cfg, err := Load("", environ)
			if err != nil {
				t.Fatalf("environment does not load: %v", err)
			}
			if cfg.Broker.Embedded {
				t.Error("broker.embedded is true: the service would not use the kafka service")
			}
			if !slices.Equal(cfg.Kafka.Brokers, []string{"kafka:9092"}) {
				t.Errorf("kafka.brokers = %v, want [kafka:9092]", cfg.Kafka.Brokers)
			}
			if host, _, err := net.SplitHostPort(cfg.Metrics.Addr); err != nil || (host != "0.0.0.0" && host != "") {
				t.Errorf("metrics.addr = %q: not reachable from outside the container", cfg.Metrics.Addr)
			}
			if cfg.Log.Format != "json" {
				t.Errorf("log.format = %q, want json", cfg.Log.Format)
			}
		})
	}
	slices.Sort(streamrec)
	if want := []string{"catalog", "clickstream", "migrate", "produce", "serving"}; !slices.Equal(streamrec, want) {
		t.Errorf("streamrec services = %v, want %v", streamrec, want)
	}
	for _, tool := range []string{"produce", "migrate"} {
		if p := doc.Services[tool].Profiles; !slices.Contains(p, "tools") {
			t.Errorf("%s profiles = %v: it should start only with --profile tools", tool, p)
		}
	}
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	line int
	op   string // upper case
	args string
}

func readDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []dockerInstruction
		pending string
		start   int
	)
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if pending != "" && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if pending == "" {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			pending += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		full := pending + trimmed
		pending = ""
		op, args, _ := strings.Cut(full, " ")
		out = append(out, dockerInstruction{line: start, op: strings.ToUpper(op), args: strings.TrimSpace(args)})
	}
	return out
}

// execForm parses a JSON-array instruction argument.
func execForm(t *testing.T, in dockerInstruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil {
		t.Fatalf("Dockerfile line %d: %s %s is not exec (JSON array) form: %v", in.line, in.op, in.args, err)
	}
	return args
}

func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)

	// The final stage is everything after the last FROM.
	var froms []dockerInstruction
	last := -1
	for i, in := range ins {
		if in.op == "FROM" {
			froms = append(froms, in)
			last = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build and a runtime stage", len(froms))
	}
	final := ins[last+1:]

	// The build stage's Go matches go.mod's minor version.
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(goVersion[1]) + "-"; !strings.HasPrefix(froms[0].args, want) {
		t.Errorf("Dockerfile line %d: FROM %s, want %s... to match go.mod", froms[0].line, froms[0].args, want)
	}

	var entrypoint, cmd []string
	var exposed []string
	keys := envKeys()
	for _, in := range final {
		switch in.op {
		case "ENTRYPOINT":
			entrypoint = execForm(t, in)
		case "CMD":
			cmd = execForm(t, in)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENV":
			for _, f := range strings.Fields(in.args) {
				name, _, _ := strings.Cut(f, "=")
				if _, ok := keys[name]; strings.HasPrefix(name, EnvPrefix) && !ok {
					t.Errorf("Dockerfile line %d: ENV %s names no config key", in.line, name)
				}
			}
		}
	}
	if !slices.Equal(entrypoint, []string{"streamrec"}) {
		t.Errorf("final stage ENTRYPOINT = %q, want [\"streamrec\"]", entrypoint)
	}
	if len(cmd) == 0 || !slices.Contains(subcommands, cmd[0]) {
		t.Errorf("final stage CMD = %q, want a streamrec subcommand %v", cmd, subcommands)
	}
	_, port, err := net.SplitHostPort(Default().Metrics.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
		t.Errorf("final stage EXPOSE %v lacks the metrics port %s", exposed, port)
	}
}

// TestComposeMatchesCode: the servers docker-compose.yml runs are the
// versions the tests run against, and the streamrec services use what the
// servers are set up with.
func TestComposeMatchesCode(t *testing.T) {
	doc, _ := readCompose(t)
	defaults := func(v string) string { // Compose's interpolation, with no variables set
		return interpolation.ReplaceAllString(v, "$3")
	}
	tag := func(service string) string {
		_, v, _ := strings.Cut(doc.Services[service].Image, ":")
		return v
	}

	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	client := regexp.MustCompile(`github.com/qdrant/go-client (v[0-9.]+)`).FindSubmatch(gomod)
	if client == nil {
		t.Fatal("go.mod has no github.com/qdrant/go-client")
	}
	if got := tag("qdrant"); got != string(client[1]) {
		t.Errorf("compose runs qdrant %s, go.mod has go-client %s (and the tests run the server of that version)", got, client[1])
	}

	script, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "kafka.sh"))
	if err != nil {
		t.Fatal(err)
	}
	kafka := regexp.MustCompile(`VERSION=\$\{KAFKA_VERSION:-([0-9.]+)\}`).FindSubmatch(script)
	if kafka == nil {
		t.Fatal("scripts/kafka.sh names no default KAFKA_VERSION")
	}
	if got := tag("kafka"); got != string(kafka[1]) {
		t.Errorf("compose runs apache/kafka %s, the tests run Kafka %s (scripts/kafka.sh)", got, kafka[1])
	}

	db := defaults(doc.Services["clickhouse"].Environment["CLICKHOUSE_DB"])
	if db == "" {
		t.Fatal("the clickhouse service sets no CLICKHOUSE_DB")
	}
	for name, s := range doc.Services {
		if !s.streamrec() || s.Environment["STREAMREC_ANALYTICS_BACKEND"] != "clickhouse" {
			continue
		}
		if got := defaults(s.Environment["STREAMREC_CLICKHOUSE_DATABASE"]); got != db {
			t.Errorf("service %s writes to ClickHouse database %q, the clickhouse service creates %q", name, got, db)
		}
	}
}

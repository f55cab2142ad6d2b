package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a config key:
// kafka.brokers is STREAMREC_KAFKA_BROKERS.
const EnvPrefix = "STREAMREC_"

// EnvConfigFile names the config file, like --config. It is the one
// STREAMREC_ variable that is not a config key.
const EnvConfigFile = EnvPrefix + "CONFIG"

var durationType = reflect.TypeFor[time.Duration]()

// field is one settable leaf of the config: a scalar or a list of scalars.
type field struct {
	path string // dotted yaml path, e.g. kafka.sasl.user
	idx  []int  // reflect field index path
}

// leaves lists every leaf field of t by its yaml path.
func leaves(t reflect.Type, prefix string, idx []int, out map[string]field) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, inline := yamlName(f)
		if name == "-" || !f.IsExported() {
			continue
		}
		path := prefix
		if !inline {
			path = join(prefix, name)
		}
		fi := append(append([]int(nil), idx...), i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != durationType && ft != reflect.TypeFor[time.Time]() {
			leaves(ft, path, fi, out)
			continue
		}
		out[path] = field{path: path, idx: fi}
	}
}

func yamlName(f reflect.StructField) (name string, inline bool) {
	tag := f.Tag.Get("yaml")
	parts := strings.Split(tag, ",")
	for _, p := range parts[1:] {
		if p == "inline" {
			return "", true
		}
	}
	if parts[0] == "" {
		return strings.ToLower(f.Name), false
	}
	return parts[0], false
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// envName is the environment variable for a yaml path.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv sets the fields named by STREAMREC_* variables in environ. A
// variable that names no key is an error, so a typo fails fast.
func applyEnv(cfg *Config, environ []string) error {
	byEnv := map[string]field{}
	all := map[string]field{}
	leaves(reflect.TypeFor[Config](), "", nil, all)
	for _, f := range all {
		byEnv[envName(f.path)] = f
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || name == EnvConfigFile {
			continue
		}
		f, known := byEnv[name]
		if !known {
			return fmt.Errorf("environment variable %s names no config key (`streamrec config` lists them)", name)
		}
		v := root.FieldByIndex(f.idx)
		if err := setScalar(v, val); err != nil {
			return fmt.Errorf("%s (config key %s): %w", name, f.path, err)
		}
	}
	return nil
}

// setScalar parses s into v. Lists are comma-separated.
func setScalar(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 500ms, 10s)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		parts := strings.Split(s, ",")
		sl := reflect.MakeSlice(v.Type(), 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := setScalar(e, p); err != nil {
				return err
			}
			sl = reflect.Append(sl, e)
		}
		v.Set(sl)
	case reflect.Map:
		// key=value pairs, comma-separated.
		m := reflect.MakeMap(v.Type())
		for _, p := range strings.Split(s, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok {
				return fmt.Errorf("%q is not key=value[,key=value]", s)
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := setScalar(e, val); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	default:
		return fmt.Errorf("cannot set a %s from the environment", v.Type())
	}
	return nil
}

// checkKeys walks a YAML document against t and reports the first key that
// names no field, with its full path and line.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			if err := checkKeys(c, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType || n.Kind != yaml.MappingNode {
		return nil
	}
	fields := map[string]reflect.Type{}
	collect(t, fields)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			known := make([]string, 0, len(fields))
			for name := range fields {
				known = append(known, name)
			}
			sort.Strings(known)
			return fmt.Errorf("line %d: unknown config key %s (known under %s: %s)",
				k.Line, join(path, k.Value), orRoot(path), strings.Join(known, ", "))
		}
		if err := checkKeys(v, ft, join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// collect maps the yaml names of t's fields (flattening inline ones) to
// their types.
func collect(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, inline := yamlName(f)
		if name == "-" || !f.IsExported() {
			continue
		}
		if inline {
			collect(f.Type, out)
			continue
		}
		out[name] = f.Type
	}
}

// Key is one config key, its environment variable and its value in a
// config.
type Key struct {
	Path  string
	Env   string
	Value string
}

// Keys lists every key of c with its environment variable and value,
// sorted by path. Secrets (password and api_key keys) are masked.
func (c Config) Keys() []Key {
	all := map[string]field{}
	leaves(reflect.TypeFor[Config](), "", nil, all)
	root := reflect.ValueOf(c)
	out := make([]Key, 0, len(all))
	for p, f := range all {
		v := root.FieldByIndex(f.idx)
		val := fmt.Sprint(v.Interface())
		if v.Kind() == reflect.Pointer {
			val = "<unset>"
			if !v.IsNil() {
				val = fmt.Sprint(v.Elem().Interface())
			}
		}
		if (strings.HasSuffix(p, "password") || strings.HasSuffix(p, "api_key")) && val != "" {
			val = "<set>"
		}
		out = append(out, Key{Path: p, Env: envName(p), Value: val})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

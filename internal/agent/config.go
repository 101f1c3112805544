package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/infrawatch/infrawatch/internal/flagenv"
)

// Config is everything the agent needs. Sources in increasing priority: YAML file, INFRAWATCH_AGENT_*
// environment variables, command-line flags.
type Config struct {
	Server        string            `yaml:"server"`          // base URL of the infrawatch API; required
	APIKey        string            `yaml:"api_key"`         // ingest-scoped key; required for run; never logged
	Interval      time.Duration     `yaml:"interval"`        // collection interval; default 10s
	Hostname      string            `yaml:"hostname"`        // empty: the OS host name
	Labels        map[string]string `yaml:"labels"`          // sent as host.labels
	Collectors    []string          `yaml:"collectors"`      // empty: all of AllCollectors
	Logs          []LogSource       `yaml:"logs"`            // files to tail
	SpoolDir      string            `yaml:"spool_dir"`       // default /var/lib/infrawatch-agent/spool
	SpoolMaxBytes int64             `yaml:"spool_max_bytes"` // default 64 MiB; oldest batches dropped beyond it
}

// Defaults used when a setting is zero.
const (
	DefaultInterval      = 10 * time.Second
	DefaultSpoolDir      = "/var/lib/infrawatch-agent/spool"
	DefaultSpoolMaxBytes = 64 << 20
)

func defaultConfig() Config {
	return Config{Interval: DefaultInterval, SpoolDir: DefaultSpoolDir, SpoolMaxBytes: DefaultSpoolMaxBytes,
		Collectors: append([]string(nil), AllCollectors...), Labels: map[string]string{}}
}

// Validate lists every problem, not only the first, so check-config can print them all.
func (c Config) Validate(needKey bool) error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("server: required"))
	} else if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("server: %q is not an http(s) URL", c.Server))
	}
	if needKey && c.APIKey == "" {
		errs = append(errs, errors.New("api_key: required"))
	}
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval: %s is shorter than 1s", c.Interval))
	}
	if _, err := NewCollectors(c.Collectors); err != nil {
		errs = append(errs, fmt.Errorf("collectors: %w", err))
	}
	for i, l := range c.Logs {
		if l.Path == "" || l.Source == "" {
			errs = append(errs, fmt.Errorf("logs[%d]: path and source are required", i))
		} else if _, err := filepath.Match(l.Path, ""); err != nil {
			errs = append(errs, fmt.Errorf("logs[%d]: path %q: %w", i, l.Path, err))
		}
	}
	errs = append(errs, c.validateHost()...)
	if c.SpoolDir == "" {
		errs = append(errs, errors.New("spool_dir: required"))
	}
	if c.SpoolMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("spool_max_bytes: %d is below 1 MiB", c.SpoolMaxBytes))
	}
	return errors.Join(errs...)
}

// validateHost applies the server's limits to the host name and labels, which go with every batch: a
// configuration the server would refuse is caught at start rather than dropping each batch.
func (c Config) validateHost() []error {
	var errs []error
	text := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	if n := utf8.RuneCountInString(c.Hostname); n > MaxHostNameChars || !text(c.Hostname) {
		errs = append(errs, fmt.Errorf("hostname: must be at most %d characters of UTF-8 without NUL", MaxHostNameChars))
	}
	if len(c.Labels) > MaxHostLabels {
		errs = append(errs, fmt.Errorf("labels: %d labels; at most %d are allowed", len(c.Labels), MaxHostLabels))
	}
	for k, v := range c.Labels {
		if k == "" || len(k) > MaxHostLabelNameBytes || !text(k) {
			errs = append(errs, fmt.Errorf("labels: name %q must be 1 to %d bytes of UTF-8 without NUL", k, MaxHostLabelNameBytes))
		}
		if len(v) > MaxHostLabelValueBytes || !text(v) {
			errs = append(errs, fmt.Errorf("labels.%s: must be at most %d bytes of UTF-8 without NUL", k, MaxHostLabelValueBytes))
		}
	}
	return errs
}

// String describes the configuration with the API key redacted.
func (c Config) String() string {
	c.APIKey = redact(c.APIKey)
	b, _ := yaml.Marshal(c)
	return string(b)
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// labelFlag adds --label k=v to a map, one label a time.
type labelFlag map[string]string

func (l labelFlag) String() string { return "" }
func (l labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	l[k] = val
	return nil
}

// labelsFlag adds --labels k=v,k=v (INFRAWATCH_AGENT_LABELS) to a map.
type labelsFlag map[string]string

func (l labelsFlag) String() string { return "" }
func (l labelsFlag) Set(v string) error {
	for _, kv := range splitList(v) {
		if err := labelFlag(l).Set(kv); err != nil {
			return err
		}
	}
	return nil
}

// listFlag is a comma-separated list.
type listFlag struct{ list *[]string }

func (l listFlag) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}
func (l listFlag) Set(v string) error { *l.list = splitList(v); return nil }

// envPrefix starts the environment variable of every flag: --api-key is INFRAWATCH_AGENT_API_KEY.
const envPrefix = "INFRAWATCH_AGENT_"

// flags registers the agent's flags on a new flag set, bound to cfg (their defaults are cfg's values)
// and, for --config, to path.
func flags(name string, cfg *Config, path *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.StringVar(path, "config", *path, "YAML configuration file")
	fs.StringVar(&cfg.Server, "server", cfg.Server, "infrawatch base URL, e.g. https://iw.example.com")
	fs.StringVar(&cfg.APIKey, "api-key", cfg.APIKey, "ingest API key (prefer the environment or the file: flags show in ps)")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "collection interval (0: 10s)")
	fs.StringVar(&cfg.Hostname, "hostname", cfg.Hostname, "host name to report (empty: the OS host name)")
	fs.Var(listFlag{&cfg.Collectors}, "collectors", "comma-separated collectors (empty: all: "+strings.Join(AllCollectors, ",")+")")
	fs.StringVar(&cfg.SpoolDir, "spool-dir", cfg.SpoolDir, "spool directory (empty: "+DefaultSpoolDir+")")
	fs.Int64Var(&cfg.SpoolMaxBytes, "spool-max-bytes", cfg.SpoolMaxBytes, "spool size limit in bytes (0: 64 MiB)")
	fs.Var(labelFlag(cfg.Labels), "label", "host label key=value (repeatable)")
	fs.Var(labelsFlag(cfg.Labels), "labels", "host labels key=value,key=value")
	return fs
}

// LoadConfig reads the configuration from the file (--config, or INFRAWATCH_AGENT_CONFIG), then the
// INFRAWATCH_AGENT_<FLAG> variables (getenv; an empty one counts as unset), then the flags in args, each
// over the one before; labels add up, the later source winning for a key.
func LoadConfig(name string, args []string, getenv func(string) string) (Config, error) {
	lookup := func(k string) (string, bool) { v := getenv(k); return v, v != "" }
	// The file's path first, to read the file before the variables and flags that override it.
	var path string
	first := flags(name, &Config{Labels: map[string]string{}}, &path)
	if err := first.Parse(args); err != nil {
		return Config{}, fmt.Errorf("parse flags: %w", err)
	}
	if first.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", first.Args())
	}
	if path == "" {
		path, _ = lookup(flagenv.Name(envPrefix, "config"))
	}

	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) /* empty file */ {
			return Config{}, fmt.Errorf("parse config %s: %w", path, err)
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
	}
	// The variables before the flags, on one flag set: a flag given on the command line is set after
	// its variable, and wins (or adds to the labels).
	fs := flags(name, &cfg, &path)
	if err := flagenv.Fill(fs, envPrefix, lookup); err != nil {
		return Config{}, err
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("parse flags: %w", err)
	}

	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = DefaultSpoolDir
	}
	if cfg.SpoolMaxBytes == 0 {
		cfg.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if len(cfg.Collectors) == 0 {
		cfg.Collectors = append([]string(nil), AllCollectors...)
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	return cfg, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
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

// labelFlag collects repeated --label k=v.
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

// LoadConfig parses args and getenv into a Config; file < environment < flags.
func LoadConfig(name string, args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var (
		cfgPath    = fs.String("config", "", "YAML configuration file (env INFRAWATCH_AGENT_CONFIG)")
		server     = fs.String("server", "", "infrawatch base URL, e.g. https://iw.example.com")
		apiKey     = fs.String("api-key", "", "ingest API key (prefer the environment or the file: flags show in ps)")
		interval   = fs.Duration("interval", 0, "collection interval (0: 10s)")
		hostname   = fs.String("hostname", "", "host name to report (empty: the OS host name)")
		collectors = fs.String("collectors", "", "comma-separated collectors (empty: all: "+strings.Join(AllCollectors, ",")+")")
		spoolDir   = fs.String("spool-dir", "", "spool directory (empty: "+DefaultSpoolDir+")")
		spoolMax   = fs.Int64("spool-max-bytes", 0, "spool size limit in bytes (0: 64 MiB)")
		labels     = labelFlag{}
	)
	fs.Var(labels, "label", "host label key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := defaultConfig()
	path := *cfgPath
	if path == "" {
		path = getenv("INFRAWATCH_AGENT_CONFIG")
	}
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

	env := func(k string) (string, bool) { v := getenv("INFRAWATCH_AGENT_" + k); return v, v != "" }
	var errs []error
	if v, ok := env("SERVER"); ok {
		cfg.Server = v
	}
	if v, ok := env("API_KEY"); ok {
		cfg.APIKey = v
	}
	if v, ok := env("INTERVAL"); ok {
		d, err := time.ParseDuration(v)
		errs = append(errs, wrapIf("INFRAWATCH_AGENT_INTERVAL", err))
		cfg.Interval = d
	}
	if v, ok := env("HOSTNAME"); ok {
		cfg.Hostname = v
	}
	if v, ok := env("LABELS"); ok {
		for _, kv := range strings.Split(v, ",") {
			errs = append(errs, wrapIf("INFRAWATCH_AGENT_LABELS", labelFlag(cfg.Labels).Set(strings.TrimSpace(kv))))
		}
	}
	if v, ok := env("COLLECTORS"); ok {
		cfg.Collectors = splitList(v)
	}
	if v, ok := env("SPOOL_DIR"); ok {
		cfg.SpoolDir = v
	}
	if v, ok := env("SPOOL_MAX_BYTES"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		errs = append(errs, wrapIf("INFRAWATCH_AGENT_SPOOL_MAX_BYTES", err))
		cfg.SpoolMaxBytes = n
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}

	if set["server"] {
		cfg.Server = *server
	}
	if set["api-key"] {
		cfg.APIKey = *apiKey
	}
	if set["interval"] {
		cfg.Interval = *interval
	}
	if set["hostname"] {
		cfg.Hostname = *hostname
	}
	if set["collectors"] {
		cfg.Collectors = splitList(*collectors)
	}
	if set["spool-dir"] {
		cfg.SpoolDir = *spoolDir
	}
	if set["spool-max-bytes"] {
		cfg.SpoolMaxBytes = *spoolMax
	}
	for k, v := range labels {
		cfg.Labels[k] = v
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

func wrapIf(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

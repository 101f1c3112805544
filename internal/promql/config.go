package promql

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config is what the PromQL engine runs with: the flags of `serve` that concern it. DefaultConfig holds
// the only copy of the defaults; a zero field of a Config handed to New takes its default.
type Config struct {
	// MaxSamples bounds the samples one query may hold: those the storage reads for it (checked as each
	// selector is read, before the engine sees them) and those the engine holds in memory at once
	// (Prometheus's --query.max-samples). A query over it fails naming the limit (--promql-max-samples).
	MaxSamples int
	// MaxSeries bounds the series one selector may match; more fails naming the selector
	// (--promql-max-series).
	MaxSeries int
	// Timeout bounds one query's whole evaluation, database reads and engine work (Prometheus's
	// --query.timeout); each database statement is bounded by the statement timeout too
	// (--promql-timeout). A request's timeout parameter may only shorten it.
	Timeout time.Duration
	// LookbackDelta is how far back an instant selector looks for a series' latest sample (Prometheus's
	// --query.lookback-delta; a request's lookback_delta parameter overrides it) (--promql-lookback-delta).
	LookbackDelta time.Duration
	// Rollups lets the storage answer a selector from a rollup tier where that gives the same answer as
	// the raw samples (see the package doc); false reads raw samples always (--promql-rollups).
	Rollups bool
}

// DefaultConfig returns the defaults: Prometheus's timeout halved, its lookback, and limits that keep
// a query under about 160 MB of samples (16 bytes each): a day of 1,000 series scraped every 10 s is
// 8.64 million.
func DefaultConfig() Config {
	return Config{MaxSamples: 10_000_000, MaxSeries: 20_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Rollups: true}
}

// AddFlags registers the engine's flags on fs, with c's values as their defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxSamples, "promql-max-samples", c.MaxSamples,
		"most samples one PromQL query may read from storage, and hold in memory at once in the engine (Prometheus's --query.max-samples)")
	fs.IntVar(&c.MaxSeries, "promql-max-series", c.MaxSeries, "most series one PromQL selector may match")
	fs.DurationVar(&c.Timeout, "promql-timeout", c.Timeout,
		"longest a PromQL query may take in all (each database statement is also bounded by --statement-timeout)")
	fs.DurationVar(&c.LookbackDelta, "promql-lookback-delta", c.LookbackDelta,
		"how far back a PromQL instant selector looks for a series' latest sample (Prometheus's --query.lookback-delta)")
	fs.BoolVar(&c.Rollups, "promql-rollups", c.Rollups,
		"answer PromQL selectors from a rollup tier where that gives the same answer as the raw samples (false: always raw)")
}

// Validate names the flag whose value the engine cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("--promql-max-samples must be positive, got %d", c.MaxSamples))
	}
	if c.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("--promql-max-series must be positive, got %d", c.MaxSeries))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--promql-timeout must be positive, got %s", c.Timeout))
	}
	if c.LookbackDelta < time.Millisecond {
		errs = append(errs, fmt.Errorf("--promql-lookback-delta must be at least 1ms, got %s", c.LookbackDelta))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields from DefaultConfig. Rollups, a bool, is taken as given.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxSamples <= 0 {
		c.MaxSamples = d.MaxSamples
	}
	if c.MaxSeries <= 0 {
		c.MaxSeries = d.MaxSeries
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.LookbackDelta <= 0 {
		c.LookbackDelta = d.LookbackDelta
	}
	return c
}

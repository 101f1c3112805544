package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

const day = 24 * time.Hour

// RetentionConfig says how long each kind of data is kept. Zero means the default given with each field.
//
// Data goes in whole chunks or partitions (a day for raw data and 5-minute rollups, a week for hourly
// ones, 30 days for daily ones), so what is kept reaches back at least the configured time and less than
// one chunk further. A coarser tier must be kept at least as long as the tier it is built from: it is
// what long-range queries read, and in the timescale flavor its refresh window must stay inside the data
// of the tier below.
type RetentionConfig struct {
	Samples        time.Duration // raw samples; 30 days. Ingest should refuse older samples (see ingest.Config.RawRetention).
	Samples5m      time.Duration // ts.samples_5m; 90 days
	Samples1h      time.Duration // ts.samples_1h; 2 years (730 days)
	Samples1d      time.Duration // ts.samples_1d; 5 years (1825 days)
	CheckResults   time.Duration // raw check results; 30 days
	CheckResults1h time.Duration // ts.check_results_1h; 2 years (730 days)
	CheckResults1d time.Duration // ts.check_results_1d; 5 years (1825 days)
	Logs           time.Duration // ts.logs; 30 days
}

func (r RetentionConfig) withDefaults() RetentionConfig {
	for _, f := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&r.Samples, 30 * day}, {&r.Samples5m, 90 * day}, {&r.Samples1h, 730 * day}, {&r.Samples1d, 1825 * day},
		{&r.CheckResults, 30 * day}, {&r.CheckResults1h, 730 * day}, {&r.CheckResults1d, 1825 * day},
		{&r.Logs, 30 * day},
	} {
		if *f.field == 0 {
			*f.field = f.def
		}
	}
	return r
}

// retained is how long one relation keeps its data.
type retained struct {
	relation string
	keep     time.Duration
}

func (r RetentionConfig) relations() []retained {
	return []retained{
		{"ts.samples", r.Samples}, {"ts.samples_5m", r.Samples5m}, {"ts.samples_1h", r.Samples1h},
		{"ts.samples_1d", r.Samples1d}, {"ts.check_results", r.CheckResults},
		{"ts.check_results_1h", r.CheckResults1h}, {"ts.check_results_1d", r.CheckResults1d},
		{"ts.logs", r.Logs},
	}
}

// validate needs the defaults applied. At least a day everywhere: that is the raw tables' chunk. The
// hourly tiers keep at least 3 days, so that the daily tiers' refresh windows (2 days and 3 hours at the
// least, for TimescaleDB's two buckets) fit in them.
func (r RetentionConfig) validate() error {
	for _, rel := range r.relations() {
		if rel.keep < day {
			return fmt.Errorf("maintenance: retention of %s (%s) must be at least a day", rel.relation, rel.keep)
		}
	}
	for _, rel := range []retained{{"ts.samples_1h", r.Samples1h}, {"ts.check_results_1h", r.CheckResults1h}} {
		if rel.keep < 3*day {
			return fmt.Errorf("maintenance: retention of %s (%s) must be at least 3 days", rel.relation, rel.keep)
		}
	}
	for _, chain := range [][]retained{
		{{"ts.samples", r.Samples}, {"ts.samples_5m", r.Samples5m}, {"ts.samples_1h", r.Samples1h}, {"ts.samples_1d", r.Samples1d}},
		{{"ts.check_results", r.CheckResults}, {"ts.check_results_1h", r.CheckResults1h}, {"ts.check_results_1d", r.CheckResults1d}},
	} {
		for i := 1; i < len(chain); i++ {
			if finer, coarser := chain[i-1], chain[i]; coarser.keep < finer.keep {
				return fmt.Errorf("maintenance: retention of %s (%s) must be at least that of %s (%s), which it is built from",
					coarser.relation, coarser.keep, finer.relation, finer.keep)
			}
		}
	}
	return nil
}

// refreshStarts says how far back each continuous aggregate's refresh policy reaches (timescale flavor).
// Ingest accepts samples as old as the raw retention, so the 5-minute tier reaches that far and each
// coarser tier a day more, to pick up what the tier below rebuilt from late rows. But never beyond the
// retention of the tier below: TimescaleDB's drop_chunks invalidates what it drops, and a refresh over
// it would empty the rollup there.
func (r RetentionConfig) refreshStarts() []retained {
	return []retained{
		{"ts.samples_5m", r.Samples},
		{"ts.samples_1h", min(r.Samples+day, r.Samples5m)},
		{"ts.samples_1d", min(r.Samples+2*day, r.Samples1h)},
		{"ts.check_results_1h", r.CheckResults},
		{"ts.check_results_1d", min(r.CheckResults+day, r.CheckResults1h)},
	}
}

// rawHypertables are compressed after Config.CompressAfter in the timescale flavor.
var rawHypertables = []string{"ts.samples", "ts.check_results", "ts.logs"}

// applyPolicies moves TimescaleDB's compression and refresh policies to the configuration; in the
// postgres flavor there are none, and the queries change nothing.
func (s *Service) applyPolicies(ctx context.Context, q *dbsqlc.Queries) error {
	for _, h := range rawHypertables {
		changed, err := q.StorageSetCompressAfter(ctx, dbsqlc.StorageSetCompressAfterParams{Hypertable: h, CompressAfter: s.cfg.CompressAfter})
		if err != nil {
			return fmt.Errorf("set compression policy of %s: %w", h, err)
		}
		if changed {
			s.log.Info("compression policy changed", "table", h, "compress_after", s.cfg.CompressAfter)
		}
	}
	for _, st := range s.cfg.Retention.refreshStarts() {
		changed, err := q.RollupsSetRefreshStart(ctx, dbsqlc.RollupsSetRefreshStartParams{Rollup: st.relation, StartOffset: st.keep})
		if err != nil {
			return fmt.Errorf("set refresh policy of %s: %w", st.relation, err)
		}
		if changed {
			s.log.Info("refresh policy changed", "rollup", st.relation, "start_offset", st.keep)
		}
	}
	return nil
}

// applyRetention drops every relation's chunks or partitions that hold only data older than its retention.
func (s *Service) applyRetention(ctx context.Context, q *dbsqlc.Queries) error {
	for _, rel := range s.cfg.Retention.relations() {
		dropped, err := q.StorageDropOlderThan(ctx, dbsqlc.StorageDropOlderThanParams{Relation: rel.relation, Keep: rel.keep})
		if err != nil {
			return fmt.Errorf("drop data of %s older than %s: %w", rel.relation, rel.keep, err)
		}
		if dropped > 0 {
			s.log.Info("dropped old data", "relation", rel.relation, "chunks", dropped, "older_than", rel.keep)
		}
	}
	return nil
}

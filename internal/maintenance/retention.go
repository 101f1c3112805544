package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

const day = 24 * time.Hour

// RetentionConfig says how long each kind of data is kept. Zero means the default of DefaultConfig.
//
// Data goes in whole chunks or partitions (a day for raw data and 5-minute rollups, a week for hourly
// ones, 30 days for daily ones), so what is kept reaches back at least the configured time and less than
// one chunk further. A coarser tier must be kept at least as long as the tier it is built from: it is
// what long-range queries read, and in the timescale flavor its refresh window must stay inside the data
// of the tier below.
type RetentionConfig struct {
	Samples        time.Duration // raw samples (--retention-raw); ingest refuses older samples (ingest.Config.RawRetention)
	Samples5m      time.Duration // ts.samples_5m (--retention-5m)
	Samples1h      time.Duration // ts.samples_1h (--retention-1h)
	Samples1d      time.Duration // ts.samples_1d (--retention-1d)
	CheckResults   time.Duration // raw check results (--retention-raw)
	CheckResults1h time.Duration // ts.check_results_1h (--retention-1h)
	CheckResults1d time.Duration // ts.check_results_1d (--retention-1d)
	Logs           time.Duration // ts.logs (--retention-logs)
}

func (r RetentionConfig) withDefaults() RetentionConfig {
	def := DefaultConfig().Retention
	for _, f := range []struct{ field, def *time.Duration }{
		{&r.Samples, &def.Samples}, {&r.Samples5m, &def.Samples5m}, {&r.Samples1h, &def.Samples1h},
		{&r.Samples1d, &def.Samples1d}, {&r.CheckResults, &def.CheckResults}, {&r.CheckResults1h, &def.CheckResults1h},
		{&r.CheckResults1d, &def.CheckResults1d}, {&r.Logs, &def.Logs},
	} {
		if *f.field == 0 {
			*f.field = *f.def
		}
	}
	return r
}

// retained is how long one relation keeps its data, and the flag that says so.
type retained struct {
	relation string
	flag     string
	keep     time.Duration
}

func (r retained) String() string { return fmt.Sprintf("--%s (%s)", r.flag, formatDays(r.keep)) }

func (r RetentionConfig) relations() []retained {
	return []retained{
		{"ts.samples", "retention-raw", r.Samples}, {"ts.samples_5m", "retention-5m", r.Samples5m},
		{"ts.samples_1h", "retention-1h", r.Samples1h}, {"ts.samples_1d", "retention-1d", r.Samples1d},
		{"ts.check_results", "retention-raw", r.CheckResults}, {"ts.check_results_1h", "retention-1h", r.CheckResults1h},
		{"ts.check_results_1d", "retention-1d", r.CheckResults1d}, {"ts.logs", "retention-logs", r.Logs},
	}
}

// validate needs the defaults applied. At least a day everywhere: that is the raw tables' chunk. The
// hourly tiers keep at least 3 days, so that the daily tiers' refresh windows (2 days and 3 hours at the
// least, for TimescaleDB's two buckets) fit in them.
func (r RetentionConfig) validate() error {
	rel := r.relations()
	for _, x := range rel {
		if x.keep < day {
			return fmt.Errorf("%s must be at least a day (%s)", x, x.relation)
		}
	}
	samples, samples5m, samples1h, samples1d := rel[0], rel[1], rel[2], rel[3]
	results, results1h, results1d := rel[4], rel[5], rel[6]
	for _, x := range []retained{samples1h, results1h} {
		if x.keep < 3*day {
			return fmt.Errorf("%s must be at least 3 days (%s)", x, x.relation)
		}
	}
	for _, chain := range [][]retained{{samples, samples5m, samples1h, samples1d}, {results, results1h, results1d}} {
		for i := 1; i < len(chain); i++ {
			if finer, coarser := chain[i-1], chain[i]; coarser.keep < finer.keep {
				return fmt.Errorf("%s must be at least %s: %s is built from %s", coarser, finer, coarser.relation, finer.relation)
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
		{relation: "ts.samples_5m", keep: r.Samples},
		{relation: "ts.samples_1h", keep: min(r.Samples+day, r.Samples5m)},
		{relation: "ts.samples_1d", keep: min(r.Samples+2*day, r.Samples1h)},
		{relation: "ts.check_results_1h", keep: r.CheckResults},
		{relation: "ts.check_results_1d", keep: min(r.CheckResults+day, r.CheckResults1h)},
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
	// The tenants' ingest usage answers for the last minute only; an hour is kept for a look back.
	if _, err := q.IngestUsagePrune(ctx, IngestUsageKept); err != nil {
		return fmt.Errorf("forget ingest usage older than %s: %w", IngestUsageKept, err)
	}
	return nil
}

// IngestUsageKept is how long the per-minute counts of samples stored per tenant (app.ingest_usage) are
// kept; each storage pass deletes older minutes.
const IngestUsageKept = time.Hour

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
)

// result is what the run counted; print shows it as the table.
type result struct {
	pushesAcked, samplesAcked, unacked int64
	samplesStored, storedUnacked       int64 // stored samples of the agents; those no acknowledged push holds
	lost, duplicated                   int64
	duplicatedAll                      int64 // (series, time) stored more than once in all of ts.samples (checks' samples too)
	rejectedPoints, floodRefused       int64
	attempts                           int64
	statuses                           string
	oddities                           []string

	slotsExpected, slotsRun, slotsTwice, slotsLate int64

	rollups []rollupCheck

	late *lateProbe

	longestOutage time.Duration
	outageAt      time.Time
	outageOffset  time.Duration
	faults        []string
}

type rollupCheck struct {
	name        string
	rows, wrong int64
}

func (r result) rollupsDiffer() bool {
	for _, c := range r.rollups {
		if c.wrong != 0 {
			return true
		}
	}
	return false
}

// ok says whether every invariant held.
func (r result) ok() bool {
	return r.lost == 0 && r.duplicated == 0 && r.duplicatedAll == 0 && r.slotsTwice == 0 && !r.rollupsDiffer() &&
		r.rejectedPoints == 0 && r.pushesAcked > 0 && r.slotsRun > 0 && r.lateDataSeen()
}

// lateDataGoal is how soon a late sample must show in every tier's answer (README § Chaos run).
const lateDataGoal = time.Minute

// lateDataSeen says whether every late sample the probe pushed showed in every tier before the run ended.
func (r result) lateDataSeen() bool { return r.late == nil || r.late.pending == "" }

// count reads what is stored and compares it with what was acknowledged, the check slots of the
// window [from, to) with their results, and every rollup tier with a recomputation from raw.
func count(ctx context.Context, pool *db.Pool, o options, w *world, rec *recorder, from, to time.Time) (result, error) {
	res := result{pushesAcked: rec.pushesAcked.Load(), samplesAcked: rec.samplesAcked.Load(), unacked: rec.unacked.Load(),
		rejectedPoints: rec.rejectedPoints.Load(), floodRefused: rec.floodRefused.Load(), attempts: rec.attempts.Load(),
		statuses: rec.statusSummary(), oddities: rec.oddities}
	if err := countSamples(ctx, pool, rec, &res); err != nil {
		return res, err
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) - count(DISTINCT (series_id, time)) FROM ts.samples`).Scan(&res.duplicatedAll); err != nil {
		return res, fmt.Errorf("count duplicates: %w", err)
	}
	if err := countSlots(ctx, pool, from, to, &res); err != nil {
		return res, err
	}
	if err := refreshRollups(ctx, pool, o.flavor); err != nil {
		return res, err
	}
	checks, err := compareRollups(ctx, pool)
	if err != nil {
		return res, err
	}
	res.rollups = checks
	return res, nil
}

// countSamples matches every stored sample of the agents with the acknowledged push that holds it (a
// push covers its series m0… and the milliseconds [ms, ms+points) of its agent): an acknowledged sample
// with no row is lost; a (series, time) with more than one row is duplicated; a row no acknowledged
// push holds came from a push whose answer was lost (not a fault: the agent retried it or gave up).
func countSamples(ctx context.Context, pool *db.Pool, rec *recorder, res *result) error {
	covered := make([][]int32, len(rec.acked))
	for a, pushes := range rec.acked {
		sort.Slice(pushes, func(i, j int) bool { return pushes[i].ms < pushes[j].ms })
		covered[a] = make([]int32, len(pushes))
	}
	rows, err := pool.Query(ctx, `
		SELECT r.labels->>'host', r.name, (extract(epoch FROM s.time) * 1000)::bigint, count(*)
		  FROM ts.samples s JOIN app.series r ON r.id = s.series_id
		 WHERE r.labels->>'host' LIKE 'agent-%'
		 GROUP BY 1, 2, 3`)
	if err != nil {
		return fmt.Errorf("read the agents' samples: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var host, name string
		var ms, n int64
		if err := rows.Scan(&host, &name, &ms, &n); err != nil {
			return err
		}
		res.samplesStored += n
		res.duplicated += n - 1
		agent, err1 := strconv.Atoi(strings.TrimPrefix(host, "agent-"))
		metric, err2 := strconv.Atoi(name[strings.LastIndexByte(name, 'm')+1:])
		if err1 != nil || err2 != nil || agent < 0 || agent >= len(rec.acked) {
			res.storedUnacked += n
			continue
		}
		pushes := rec.acked[agent]
		i := sort.Search(len(pushes), func(i int) bool { return pushes[i].ms+int64(pushes[i].points) > ms })
		if i < len(pushes) && pushes[i].ms <= ms && metric < pushes[i].metrics {
			covered[agent][i]++
		} else {
			res.storedUnacked += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the agents' samples: %w", err)
	}
	for a, pushes := range rec.acked {
		for i, p := range pushes {
			if missing := int64(p.samples()) - int64(covered[a][i]); missing > 0 {
				res.lost += missing
				rec.oddity(fmt.Sprintf("lost: agent %d push at %d: %d of %d samples stored", a, p.ms, covered[a][i], p.samples()))
			}
		}
	}
	res.oddities = rec.oddities
	return nil
}

// countSlots counts the check slots of the window and their results. A check's slots are its phase
// (next_run_at, which keeps it: see poller.nextSlot) plus whole intervals; a result belongs to the last
// slot at or before its time. Expected: the slots in [from, to) of every check; run: those with a
// result; twice: those with more than one; late: results started more than 2 s after their slot (a run
// taken over after a lease expired, or a poller that fell behind). Slots that were skipped (the poller
// skips the slots it missed rather than running them back to back) are expected minus run.
func countSlots(ctx context.Context, pool *db.Pool, from, to time.Time, res *result) error {
	err := pool.QueryRow(ctx, `
		WITH c AS (SELECT id, interval_seconds::float8 AS i, next_run_at AS phase FROM app.checks WHERE name LIKE 'chaos-%'),
		     r AS (SELECT x.check_id, c.phase, c.i,
		                  floor(extract(epoch FROM x.time - c.phase)::float8 / c.i) AS k,
		                  extract(epoch FROM x.time - c.phase)::float8 AS off
		             FROM ts.check_results x JOIN c ON c.id = x.check_id),
		     s AS (SELECT check_id, k, count(*) AS n, max(off - k * i) AS late
		             FROM r
		            WHERE phase + make_interval(secs => k * i) >= $1 AND phase + make_interval(secs => k * i) < $2
		            GROUP BY 1, 2)
		SELECT (SELECT coalesce(sum(ceil(extract(epoch FROM $2::timestamptz - phase)::float8 / i)
		                            - ceil(extract(epoch FROM $1::timestamptz - phase)::float8 / i)), 0)::bigint FROM c),
		       count(*), count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE late > 2)
		  FROM s`, from, to).Scan(&res.slotsExpected, &res.slotsRun, &res.slotsTwice, &res.slotsLate)
	if err != nil {
		return fmt.Errorf("count check slots: %w", err)
	}
	return nil
}

// rollupTiers are the tiers compared with raw, finest first (the order a refresh goes in).
var rollupTiers = []struct{ name, width, raw string }{
	{"ts.samples_5m", "5 minutes", "samples"},
	{"ts.samples_1h", "1 hour", "samples"},
	{"ts.samples_1d", "24 hours", "samples"},
	{"ts.check_results_1h", "1 hour", "checks"},
	{"ts.check_results_1d", "24 hours", "checks"},
}

// refreshRollups materializes every tier up to now, as the scheduler would at its next pass: in the
// postgres flavor infrawatch.refresh_rollups until no tier reports a backlog, in the timescale flavor
// refresh_continuous_aggregate over all time. Late samples (the flood's are six hours old) land in
// buckets materialized before, so this also proves they are re-aggregated.
func refreshRollups(ctx context.Context, pool *db.Pool, flavor string) error {
	if flavor == "timescale" {
		// TimescaleDB's own refresh job may be refreshing the same tier: that refusal (lock_not_available)
		// is waited out, for at most two minutes a tier.
		for _, t := range rollupTiers {
			for wait := time.Second; ; wait *= 2 {
				_, err := pool.Exec(ctx, "CALL refresh_continuous_aggregate($1::regclass, NULL, now())", t.name)
				if err == nil {
					break
				}
				if !errors.Is(db.Translate(err), db.ErrLocked) || wait > time.Minute {
					return fmt.Errorf("refresh %s: %w", t.name, err)
				}
				time.Sleep(wait)
			}
		}
		return nil
	}
	for range 1000 {
		var backlog bool
		if err := pool.QueryRow(ctx, "SELECT coalesce(bool_or(backlog), false) FROM infrawatch.refresh_rollups(now())").Scan(&backlog); err != nil {
			return fmt.Errorf("refresh rollups: %w", err)
		}
		if !backlog {
			return nil
		}
	}
	return fmt.Errorf("refresh rollups: still a backlog after 1000 calls")
}

// compareRollups compares each tier, bucket by bucket, with a date_bin aggregation of the raw rows: a
// bucket missing on either side or with any aggregate different counts as wrong. Sums are compared to
// a relative 1e-9 (the tiers add partial sums in another order than raw does).
func compareRollups(ctx context.Context, pool *db.Pool) ([]rollupCheck, error) {
	var out []rollupCheck
	for _, t := range rollupTiers {
		var query string
		if t.raw == "samples" {
			query = `
				WITH raw AS (SELECT date_bin($1::interval, time, 'epoch') AS bucket, series_id, min(value) AS min, max(value) AS max,
				                    sum(value) AS sum, count(*) AS count, (array_agg(value ORDER BY time DESC))[1] AS last
				               FROM ts.samples GROUP BY 1, 2)
				SELECT count(*), count(*) FILTER (WHERE v.bucket IS NULL OR raw.bucket IS NULL OR v.min <> raw.min OR v.max <> raw.max
				                                  OR v.count <> raw.count OR v.last <> raw.last
				                                  OR abs(v.sum - raw.sum) > 1e-9 * greatest(1, abs(raw.sum)))
				  FROM raw FULL JOIN ` + t.name + ` v ON v.bucket = raw.bucket AND v.series_id = raw.series_id`
		} else {
			query = `
				WITH raw AS (SELECT date_bin($1::interval, time, 'epoch') AS bucket, check_id,
				                    count(*) FILTER (WHERE status = 'up') AS up_count, count(*) AS total
				               FROM ts.check_results GROUP BY 1, 2)
				SELECT count(*), count(*) FILTER (WHERE v.bucket IS NULL OR raw.bucket IS NULL OR v.up_count <> raw.up_count
				                                  OR v.total <> raw.total)
				  FROM raw FULL JOIN ` + t.name + ` v ON v.bucket = raw.bucket AND v.check_id = raw.check_id`
		}
		c := rollupCheck{name: t.name}
		if err := pool.QueryRow(ctx, query, t.width).Scan(&c.rows, &c.wrong); err != nil {
			return nil, fmt.Errorf("compare %s with raw: %w", t.name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// print writes the table.
func (r result) print(w io.Writer) {
	verdict := func(bad bool) string {
		if bad {
			return "FAIL"
		}
		return "ok"
	}
	fmt.Fprintf(w, "\nfaults applied (%d):\n", len(r.faults))
	for _, f := range r.faults {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintf(w, "\nanswers to %d attempts (agents and flood): %s\n", r.attempts, r.statuses)
	for _, o := range r.oddities {
		fmt.Fprintf(w, "  unexpected: %s\n", o)
	}
	fmt.Fprintf(w, "\n%-46s %14s\n", "", "")
	row := func(name string, v any, note string) { fmt.Fprintf(w, "%-46s %14v  %s\n", name, v, note) }
	row("pushes acknowledged", r.pushesAcked, fmt.Sprintf("(%d still unacknowledged after the drain; %d flood pushes refused 429/503)", r.unacked, r.floodRefused))
	row("samples acknowledged", r.samplesAcked, "")
	row("samples stored (agents' series)", r.samplesStored, fmt.Sprintf("(%d of them from pushes never acknowledged)", r.storedUnacked))
	row("lost (acknowledged, not stored)", r.lost, verdict(r.lost != 0))
	row("duplicated (agents' series)", r.duplicated, verdict(r.duplicated != 0))
	row("duplicated (all of ts.samples)", r.duplicatedAll, verdict(r.duplicatedAll != 0))
	row("points refused in a 2xx answer", r.rejectedPoints, verdict(r.rejectedPoints != 0))
	row("check slots expected", r.slotsExpected, "")
	row("check slots run", r.slotsRun, fmt.Sprintf("(%d skipped: slots missed while no poller could run them; %d started >2 s late)",
		r.slotsExpected-r.slotsRun, r.slotsLate))
	row("check slots run twice", r.slotsTwice, verdict(r.slotsTwice != 0))
	for _, c := range r.rollups {
		row("rollup "+c.name+" buckets differing from raw", fmt.Sprintf("%d/%d", c.wrong, c.rows), verdict(c.wrong != 0))
	}
	at := ""
	if !r.outageAt.IsZero() {
		at = fmt.Sprintf("(ended %s, +%.1fs)", r.outageAt.UTC().Format("15:04:05.000"), r.outageOffset.Seconds())
	}
	if l := r.late; l != nil {
		for _, tier := range lateTiers {
			note := "ok"
			if l.longest[tier] > lateDataGoal {
				note = fmt.Sprintf("over the %s goal", lateDataGoal)
			}
			row("late sample in the "+tier+" answer after (longest)", l.longest[tier].Round(100*time.Millisecond),
				fmt.Sprintf("%s (%d of %d probes seen)", note, l.visible, l.probes))
		}
		if l.pending != "" {
			row("late sample never seen", 1, "FAIL: "+l.pending)
		}
	}
	row("longest unavailability seen by clients", r.longestOutage.Round(time.Millisecond), at)
	fmt.Fprintf(w, "\nresult: %s\n", map[bool]string{true: "PASS", false: "FAIL"}[r.ok()])
}

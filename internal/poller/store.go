package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/events"
	"github.com/infrawatch/infrawatch/internal/ingest"
)

// Run is one finished run of a check as the store writes it: its result, the samples it measured, and
// what storing it needs to know of the check.
type Run struct {
	checks.Result
	Metrics []checks.Metric

	tenant   uuid.UUID
	name     string
	host     string
	previous *string   // status before this run
	slot     time.Time // the scheduled time the run was claimed for
	next     time.Time // the slot after it
}

// newRun turns a probe's outcome into a run. A check without a host stores its samples under the host
// its kind reads from the target.
func newRun(c dbsqlc.CheckClaimDueRow, started time.Time, out checks.Outcome) Run {
	r := Run{Result: checks.NewResult(c.ID, started, out), Metrics: out.Metrics, tenant: c.TenantID, name: c.Name,
		host: c.HostName, previous: c.Status, slot: c.NextRunAt}
	if r.host == "" {
		r.host = c.Target
		if k, ok := checks.Lookup(c.Kind); ok {
			r.host = k.TargetHost(c.Target)
		}
	}
	return r
}

// changed reports whether the run changed the check's status.
func (r Run) changed() bool { return r.previous == nil || *r.previous != r.Status }

// store writes check results, status changes and their events, and the runs' metric samples.
type store struct {
	sys     *db.System
	samples *ingest.Service
	log     *slog.Logger
}

// write stores runs, then their samples through the ingest writer, and returns the runs it stored and
// how many the database refused (see writeEach). Scheduled runs (owner set) complete their lease and
// are kept only if the lease was still theirs; runs requested through the API (owner empty) set the
// status only.
//
// The runs of many tenants go in one transaction. If it fails for a reason tied to the data rather than
// the database being unreachable, each scheduled run is written on its own, so a run the database
// refuses fails alone (see writeEach). A run requested through the API is alone in its call and its
// error goes to the caller who asked for it.
func (s *store) write(ctx context.Context, owner string, runs []Run) (kept []Run, refused int, err error) {
	kept, err = s.writeTx(ctx, owner, runs)
	if err != nil && owner != "" && !db.IsUnavailable(err) {
		s.log.Warn("storing check results together failed; storing them one by one", "runs", len(runs), "err", err)
		kept, refused, err = s.writeEach(ctx, owner, runs)
	}
	s.writeSamples(ctx, kept)
	return kept, refused, err
}

// writeEach writes runs one transaction each. A run the database refuses still moves its check on to
// the next slot and releases the lease, its status left as it was, so a check whose results cannot be
// stored never freezes; the refusal is logged with the check id. It stops at the first sign that the
// database is unreachable, returning the runs stored so far; the leases of the others expire and their
// slots are run again.
func (s *store) writeEach(ctx context.Context, owner string, runs []Run) (kept []Run, refused int, err error) {
	for _, r := range runs {
		stored, err := s.writeTx(ctx, owner, []Run{r})
		if err == nil {
			kept = append(kept, stored...)
			continue
		}
		if db.IsUnavailable(err) {
			return kept, refused, err
		}
		refused++
		s.log.Error("check result refused by the database; the check moves on to its next run", "check_id", r.CheckID,
			"tenant", r.tenant, "err", err)
		if _, err := s.sys.Queries().CheckSkipRun(ctx, dbsqlc.CheckSkipRunParams{ID: r.CheckID, Owner: owner, Slot: r.slot,
			StartedAt: r.Time, NextRunAt: r.next}); err != nil {
			if db.IsUnavailable(err) {
				return kept, refused, err
			}
			s.log.Error("move a check on past a run that could not be stored", "check_id", r.CheckID, "tenant", r.tenant, "err", err)
		}
	}
	return kept, refused, nil
}

// writeTx stores runs in one transaction and returns those it kept.
func (s *store) writeTx(ctx context.Context, owner string, runs []Run) ([]Run, error) {
	var kept []Run
	err := s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		kept = runs
		if owner != "" {
			var err error
			if kept, err = complete(ctx, q, owner, runs); err != nil {
				return err
			}
		} else {
			for _, r := range runs {
				if err := q.CheckSetRunStatus(ctx, dbsqlc.CheckSetRunStatusParams{TenantID: r.tenant, ID: r.CheckID,
					Status: r.Status, Reason: r.Reason, StartedAt: r.Time}); err != nil {
					return fmt.Errorf("set the status of check %d: %w", r.CheckID, err)
				}
			}
		}
		results := dbsqlc.CheckResultInsertParams{}
		evs := make([]events.Event, 0, len(kept))
		for _, r := range kept {
			detail := r.Detail
			if r.Reason != "" {
				detail = withReason(detail, r.Reason)
			}
			detailJSON, err := json.Marshal(detail)
			if err != nil {
				return fmt.Errorf("encode the detail of check %d: %w", r.CheckID, err)
			}
			var latency time.Duration
			if r.LatencyMS != nil {
				latency = time.Duration(int64(*r.LatencyMS*1000)) * time.Microsecond
			}
			results.Times = append(results.Times, r.Time)
			results.TenantIds = append(results.TenantIds, r.tenant)
			results.CheckIds = append(results.CheckIds, r.CheckID)
			results.Statuses = append(results.Statuses, r.Status)
			results.Answered = append(results.Answered, r.LatencyMS != nil)
			results.Latencies = append(results.Latencies, latency)
			results.Details = append(results.Details, detailJSON)
			evs = append(evs, events.Event{Type: events.CheckResult, Tenant: r.tenant, CheckID: r.CheckID,
				Status: r.Status, Reason: r.Reason, LatencyMS: r.LatencyMS, Time: r.Time})
			if r.changed() {
				id, err := q.CheckEventCreate(ctx, dbsqlc.CheckEventCreateParams{TenantID: r.tenant, CheckID: r.CheckID,
					Time: r.Time, Status: r.Status, PreviousStatus: r.previous, Reason: r.Reason})
				if err != nil {
					return fmt.Errorf("record status change of check %d: %w", r.CheckID, err)
				}
				evs = append(evs, events.Event{Type: events.CheckStatus, Tenant: r.tenant, ID: id, CheckID: r.CheckID,
					Status: r.Status, Reason: r.Reason, Time: r.Time})
			}
		}
		if len(kept) > 0 {
			if err := q.CheckResultInsert(ctx, results); err != nil {
				return fmt.Errorf("store %d check results: %w", len(kept), err)
			}
		}
		return events.Publish(ctx, q, evs...)
	})
	if err != nil {
		return nil, err
	}
	return kept, nil
}

// complete releases the leases of runs and keeps those whose lease was still owner's.
func complete(ctx context.Context, q *dbsqlc.Queries, owner string, runs []Run) ([]Run, error) {
	p := dbsqlc.CheckCompleteRunsParams{Owner: owner}
	for _, r := range runs {
		p.Ids = append(p.Ids, r.CheckID)
		p.Slots = append(p.Slots, r.slot)
		p.Ups = append(p.Ups, r.Status == "up")
		p.Reasons = append(p.Reasons, r.Reason)
		p.StartedAt = append(p.StartedAt, r.Time)
		p.NextRunAt = append(p.NextRunAt, r.next)
	}
	ids, err := q.CheckCompleteRuns(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("complete %d runs: %w", len(runs), err)
	}
	done := make(map[int64]bool, len(ids))
	for _, id := range ids {
		done[id] = true
	}
	kept := runs[:0:0]
	for _, r := range runs {
		if done[r.CheckID] {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

func withReason(detail map[string]any, reason string) map[string]any {
	out := make(map[string]any, len(detail)+1)
	for k, v := range detail {
		out[k] = v
	}
	out["reason"] = reason
	return out
}

// maxSamplesWrite is the most series one ingest write of check samples holds. Runs whose series are new
// make the write create them (a few thousand a second), and a prometheus check's run brings hundreds or
// thousands: written in one piece, the new series of a large batch would outlast the store's deadline,
// be rolled back, and the next, larger batch fail the same way forever. In pieces, each one that commits
// is kept (its series cached), so a poller that starts scraping many exporters catches up.
const maxSamplesWrite = 5_000

// writeSamples stores the runs' metrics as samples of the check's host, labelled with the check, in
// ingest writes per tenant and host of at most maxSamplesWrite series. A refusal (the tenant's series
// limit, say) or a failure is logged, not retried: the check result is what matters and it is stored.
func (s *store) writeSamples(ctx context.Context, runs []Run) {
	type key struct {
		tenant uuid.UUID
		host   string
	}
	groups := map[key][]ingest.Series{}
	for _, r := range runs {
		k := key{r.tenant, r.host}
		for _, m := range r.Metrics {
			labels := make(map[string]string, len(m.Labels)+2)
			for n, v := range m.Labels {
				labels[n] = v
			}
			labels["check"] = r.name
			labels["check_id"] = strconv.FormatInt(r.CheckID, 10)
			groups[k] = append(groups[k], ingest.Series{Name: m.Name, Labels: labels, Host: r.host,
				Samples: []ingest.Sample{{TimeMs: r.Time.UnixMilli(), Value: m.Value}}})
		}
	}
	for k, all := range groups {
		for series := range slices.Chunk(all, maxSamplesWrite) {
			if err := ctx.Err(); err != nil { // past the store's deadline: say so once for what is left
				s.log.Warn("check samples not stored", "tenant", k.tenant, "host", k.host, "err", err)
				break
			}
			res, err := s.samples.Write(ctx, k.tenant, "poller", series, nil, nil)
			if err != nil {
				s.log.Warn("check samples not stored", "tenant", k.tenant, "host", k.host, "series", len(series), "err", err)
			} else if len(res.Rejected) > 0 {
				s.log.Warn("check samples refused", "tenant", k.tenant, "host", k.host, "first_reason", res.Rejected[0].Reason,
					"refused", len(res.Rejected))
			}
		}
	}
}

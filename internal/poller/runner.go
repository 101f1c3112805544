package poller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// Runner runs checks and stores what they find; the engine uses it for scheduled runs, and the API for
// runs a user asks for (RunNowForTenant). It is system work: it runs as the owning login through
// db.System, with the tenant stamped from the check or given by the caller.
type Runner struct {
	sys    *db.System
	prober *checks.Prober
	store  *store
	keys   *secrets.Keyring
}

// NewRunner returns a runner. samples writes the checks' metric samples; its writer must be running.
// keys open the checks' secrets for their probes.
func NewRunner(sys *db.System, prober *checks.Prober, samples *ingest.Service, keys *secrets.Keyring, log *slog.Logger) *Runner {
	return &Runner{sys: sys, prober: prober, store: &store{sys: sys, samples: samples, log: log}, keys: keys}
}

// probe runs a check with its secrets opened into its settings; secrets that do not open make a down
// outcome saying so.
func (r *Runner) probe(ctx context.Context, tenant uuid.UUID, c checks.Check, sealed, staged []byte) checks.Outcome {
	settings, err := checks.OpenSecrets(r.keys, tenant, c.Settings, sealed, staged)
	if err != nil {
		return checks.Outcome{Reason: err.Error(), Detail: map[string]any{}}
	}
	c.Settings = settings
	return r.prober.Probe(ctx, c)
}

// RunNowForTenant runs check id of tenant at once, outside its schedule (POST /checks/{id}/run), stores
// the result like a scheduled run's without moving the schedule, and returns it. Only a check of tenant
// runs: db.ErrNotFound says the tenant has no such check, a *checks.TooSoonError that it ran less than
// checks.MinRunGap ago.
func (r *Runner) RunNowForTenant(ctx context.Context, tenant uuid.UUID, id int64) (checks.Result, error) {
	c, err := r.sys.Queries().CheckGetForRun(ctx, dbsqlc.CheckGetForRunParams{TenantID: tenant, ID: id})
	if err != nil {
		return checks.Result{}, fmt.Errorf("check %d: %w", id, err)
	}
	started := time.Now()
	if c.LastRunAt != nil {
		if wait := c.LastRunAt.Add(checks.MinRunGap).Sub(started); wait > 0 {
			return checks.Result{}, &checks.TooSoonError{RetryAfter: wait}
		}
	}
	out := r.probe(ctx, c.TenantID, checks.Check{ID: c.ID, Kind: c.Kind, Target: c.Target,
		Timeout: time.Duration(c.TimeoutSeconds) * time.Second, Settings: c.Settings}, c.Secrets, c.SecretsStaging)
	claim := dbsqlc.CheckClaimDueRow{ID: c.ID, TenantID: c.TenantID, Name: c.Name, Kind: c.Kind, Target: c.Target,
		IntervalSeconds: c.IntervalSeconds, TimeoutSeconds: c.TimeoutSeconds, Settings: c.Settings, NextRunAt: c.NextRunAt,
		Status: c.Status, HostName: c.HostName}
	run := newRun(claim, started, out)
	if _, _, err := r.store.write(ctx, "", []Run{run}); err != nil {
		return run.Result, err
	}
	return run.Result, nil
}

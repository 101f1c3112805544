package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Tenant is a tenant that SeedTenant filled with one row in every table that holds tenant data.
type Tenant struct {
	ID       uuid.UUID
	Slug     string
	UserID   uuid.UUID
	HostID   int64
	CheckID  int64
	SeriesID int64
	RuleID   int64
	AlertID  int64
}

// SeedTenant creates a tenant with a user, a membership, an API key, an OAuth client, a refresh token,
// an invitation, an audit entry, a host, a check and a status event, a series, a sample, a check result,
// a log line, a channel, a notification and its attempt, BI limits and a BI login's mapping (to no
// role: the login itself is cluster-wide, and a seed must leave nothing behind), an alert rule with an
// alert and its event, a silence, a maintenance window with an occurrence, an SNMP trap community, a
// stream ticket, a minute of ingest usage, an SLO, a poller gap, and a report with a run, written as the
// owner the way system work writes them.
// Isolation tests insist that every tenant table has rows of each tenant, so a migration that adds a
// table holding tenant data must add a row for it here.
func SeedTenant(t testing.TB, d *DB, slug string) Tenant {
	t.Helper()
	ctx := context.Background()
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		t.Fatalf("seed %s: %v", slug, err)
	}
	defer tx.Rollback(ctx)
	now := time.Now().Truncate(time.Millisecond)
	ten := Tenant{Slug: slug}
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("seed %s: %s: %v", slug, what, err)
		}
	}
	must("tenant", tx.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ($1, $1) RETURNING id`, slug).Scan(&ten.ID))
	must("user", tx.QueryRow(ctx, `INSERT INTO app.users (email, name) VALUES ($1 || '@example.test', $1) RETURNING id`,
		slug).Scan(&ten.UserID))
	_, err = tx.Exec(ctx, `INSERT INTO app.memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')`, ten.ID, ten.UserID)
	must("membership", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes)
	                       VALUES ($1, 'seed', $2, '\x00', '{ingest}')`, ten.ID, "iw_"+slug)
	must("api key", err)
	var clientID int64
	must("oauth client", tx.QueryRow(ctx, `INSERT INTO app.oauth_clients (tenant_id, client_id, name, secret_hash, scopes)
	                                       VALUES ($1, $2, 'seed', '\x00', '{read}') RETURNING id`,
		ten.ID, "client-"+slug).Scan(&clientID))
	_, err = tx.Exec(ctx, `INSERT INTO app.refresh_tokens (tenant_id, family_id, user_id, token_hash, expires_at)
	                       VALUES ($1, gen_random_uuid(), $2, $3, now() + interval '1 day')`, ten.ID, ten.UserID, []byte("rt-"+slug))
	must("refresh token", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.invitations (tenant_id, email, role, token_hash, expires_at)
	                       VALUES ($1, 'invited-' || $2 || '@example.test', 'viewer', $3, now() + interval '1 day')`,
		ten.ID, slug, []byte("inv-"+slug))
	must("invitation", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.audit_log (tenant_id, actor_kind, actor_id, action, object_kind)
	                       VALUES ($1, 'system', 'seed', 'tenant.create', 'tenant')`, ten.ID)
	must("audit entry", err)
	must("host", tx.QueryRow(ctx, `INSERT INTO app.hosts (tenant_id, name) VALUES ($1, $2) RETURNING id`,
		ten.ID, slug+"-host").Scan(&ten.HostID))
	must("check", tx.QueryRow(ctx, `INSERT INTO app.checks (tenant_id, host_id, name, kind, target)
	                                VALUES ($1, $2, 'ping', 'icmp', '127.0.0.1') RETURNING id`,
		ten.ID, ten.HostID).Scan(&ten.CheckID))
	_, err = tx.Exec(ctx, `INSERT INTO app.check_events (tenant_id, check_id, time, status, reason)
	                       VALUES ($1, $2, $3, 'up', '')`, ten.ID, ten.CheckID, now)
	must("check event", err)
	must("series", tx.QueryRow(ctx, `INSERT INTO app.series (tenant_id, host_id, name, labels)
	                                 VALUES ($1, $2, 'cpu.usage_pct', '{"cpu":"total"}') RETURNING id`,
		ten.ID, ten.HostID).Scan(&ten.SeriesID))
	_, err = tx.Exec(ctx, `INSERT INTO ts.samples (time, tenant_id, series_id, value) VALUES ($1, $2, $3, 42)`,
		now, ten.ID, ten.SeriesID)
	must("sample", err)
	_, err = tx.Exec(ctx, `INSERT INTO ts.check_results (time, tenant_id, check_id, status, latency)
	                       VALUES ($1, $2, $3, 'up', '1ms')`, now, ten.ID, ten.CheckID)
	must("check result", err)
	_, err = tx.Exec(ctx, `INSERT INTO ts.logs (time, tenant_id, host_id, source, message)
	                       VALUES ($1, $2, $3, 'syslog', 'hello')`, now, ten.ID, ten.HostID)
	must("log line", err)
	var channelID int64
	must("channel", tx.QueryRow(ctx, `INSERT INTO app.channels (tenant_id, name, kind, settings)
	                                  VALUES ($1, 'ops mail', 'email', '{"to": ["ops@example.test"]}') RETURNING id`,
		ten.ID).Scan(&channelID))
	var notificationID int64
	must("notification", tx.QueryRow(ctx, `INSERT INTO app.notifications (tenant_id, channel_id, kind, payload)
	                                       VALUES ($1, $2, 'test', '{}') RETURNING id`, ten.ID, channelID).Scan(&notificationID))
	_, err = tx.Exec(ctx, `INSERT INTO app.notification_attempts (tenant_id, notification_id, attempt, started_at, duration_ms,
	                                                              outcome, status_code, message_key)
	                       VALUES ($1, $2, 1, $3, 12, 'sent', 200, $2)`, ten.ID, notificationID, now)
	must("notification attempt", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.bi_settings (tenant_id) VALUES ($1)`, ten.ID)
	must("BI settings", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.bi_credentials (tenant_id, name, login)
	                       VALUES ($1, 'seed', 'bi_' || substr(translate(md5(random()::text), '0189', 'wxyz'), 1, 16))`, ten.ID)
	must("BI credential", err)
	must("alert rule", tx.QueryRow(ctx, `INSERT INTO app.alert_rules (tenant_id, name, kind, settings, eval)
	                                     VALUES ($1, 'cpu high', 'threshold', '{}', '{}') RETURNING id`, ten.ID).Scan(&ten.RuleID))
	must("alert", tx.QueryRow(ctx, `INSERT INTO app.alerts (tenant_id, rule_id, fingerprint, state, severity, started_at)
	                                VALUES ($1, $2, 'seed', 'firing', 'warning', $3) RETURNING id`,
		ten.ID, ten.RuleID, now).Scan(&ten.AlertID))
	_, err = tx.Exec(ctx, `INSERT INTO app.alert_events (tenant_id, alert_id, time, kind, from_state, to_state)
	                       VALUES ($1, $2, $3, 'state', 'pending', 'firing')`, ten.ID, ten.AlertID, now)
	must("alert event", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at)
	                       VALUES ($1, '[{"name":"env","op":"=","value":"dev"}]', $2, $2::timestamptz + interval '1 hour')`, ten.ID, now)
	must("silence", err)
	var windowID int64
	must("maintenance window", tx.QueryRow(ctx, `INSERT INTO app.maintenance_windows (tenant_id, name, starts_at, ends_at)
	                                             VALUES ($1, 'upgrade', $2, $2::timestamptz + interval '1 hour') RETURNING id`,
		ten.ID, now).Scan(&windowID))
	_, err = tx.Exec(ctx, `INSERT INTO app.maintenance_occurrences (tenant_id, window_id, during)
	                       VALUES ($1, $2, tstzrange($3, $3::timestamptz + interval '1 hour'))`, ten.ID, windowID, now)
	must("maintenance occurrence", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.trap_credentials (tenant_id, name, kind, community_digest)
	                       VALUES ($1, 'seed', 'community', sha256(convert_to('seed-' || $2, 'UTF8')))`, ten.ID, slug)
	must("trap credential", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.stream_tickets (tenant_id, user_id, secret_hash, credential_expires_at, expires_at)
	                       VALUES ($1, $2, $3, now() + interval '15 minutes', now() + interval '30 seconds')`,
		ten.ID, ten.UserID, []byte("st-"+slug))
	must("stream ticket", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.ingest_usage (tenant_id, minute, slot, samples)
	                       VALUES ($1, date_trunc('minute', now()), 0, 1)`, ten.ID)
	must("ingest usage", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.slos (tenant_id, name, target, check_id) VALUES ($1, 'ping 99.9', 99.9, $2)`,
		ten.ID, ten.CheckID)
	must("SLO", err)
	_, err = tx.Exec(ctx, `INSERT INTO app.check_gaps (tenant_id, check_id, during)
	                       VALUES ($1, $2, tstzrange($3::timestamptz - interval '1 hour', $3::timestamptz - interval '50 minutes'))`,
		ten.ID, ten.CheckID, now)
	must("check gap", err)
	var reportID int64
	must("report", tx.QueryRow(ctx, `INSERT INTO app.reports (tenant_id, name, check_ids, period, schedule, recipients, next_run_at,
	                                                          next_period)
	                                 VALUES ($1, 'monthly', ARRAY[$2::bigint], 'monthly', '0 7 1 * *', '{ops@example.test}',
	                                         $3::timestamptz + interval '30 days', '2099-01') RETURNING id`,
		ten.ID, ten.CheckID, now).Scan(&reportID))
	_, err = tx.Exec(ctx, `INSERT INTO app.report_runs (tenant_id, report_id, period, period_start, period_end, state)
	                       VALUES ($1, $2, '2026-10', '2026-10-01', '2026-11-01', 'sent')`, ten.ID, reportID)
	must("report run", err)
	must("commit", tx.Commit(ctx))
	return ten
}

// SecretKey is the key that seals secrets in tests (INFRAWATCH_SECRET_KEY's form): a constant, so that
// every test world, and every process a test starts, opens what the others sealed.
const SecretKey = "test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

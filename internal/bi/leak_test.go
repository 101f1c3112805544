package bi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// Leaky probes: a login cannot create a function (so no leaky function of its own), but the built-in
// operators of its conditions raise errors — division by zero on a value only another tenant has, a
// cast that fails on another tenant's name. If such a condition ran before a view's tenant filter, the
// error would tell that the other tenant's row exists (and the message could quote it). security_barrier
// keeps them behind the filter: as alpha every probe answers without an error; as bravo, whose rows
// they aim at, each one fails — the control that shows the probe would have fired.
func TestLeakyProbesRevealNothing(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		w := newWorld(t, flavor)
		alpha, bravo := connect(t, w.issue(t, w.alpha)), connect(t, w.issue(t, w.bravo))
		m := w.bravo.marker // a value only bravo has: 1042
		probes := []string{
			fmt.Sprintf("SELECT count(*) FROM bi.samples WHERE 1 / (value - %v) > 0", m),
			fmt.Sprintf("SELECT count(*) FROM bi.samples_5m WHERE 1 / (avg_value - %v) > 0", m),
			fmt.Sprintf("SELECT count(*) FROM bi.samples_1h WHERE 1 / (max_value - %v) > 0 AND host_name LIKE '%%'", m),
			fmt.Sprintf("SELECT count(*) FROM bi.samples_1d WHERE bucket > now() - interval '30 days' AND 1 / (min_value - %v) > 0", m),
			fmt.Sprintf("SELECT count(*) FROM bi.check_results WHERE 1 / (latency_ms - %v) > 0", m),
			fmt.Sprintf("SELECT count(*) FROM bi.availability_1h WHERE 1 / (latency_max_ms - %v) > 0", m),
			fmt.Sprintf("SELECT count(*) FROM bi.availability_1d WHERE 1 / (latency_avg_ms - %v) > 0", m),
			// A condition on a name only bravo has, that divides by zero when it matches.
			"SELECT count(*) FROM bi.hosts WHERE CASE WHEN host_name = 'bravo-web-1' THEN 1 / (host_id - host_id) ELSE 1 END = 1",
			"SELECT count(*) FROM bi.checks WHERE CASE WHEN check_name LIKE 'bravo%' THEN 1 / (check_id - check_id) ELSE 1 END = 1",
			"SELECT count(*) FROM bi.series WHERE CASE WHEN labels->>'host' LIKE 'bravo%' THEN 1 / (series_id - series_id) ELSE 1 END = 1",
			"SELECT count(*) FROM bi.logs WHERE CASE WHEN message LIKE 'bravo%' THEN 1 / (length(source) - length(source)) ELSE 1 END = 1",
			// The same through a join, an ORDER BY, a window and a subquery in the select list.
			fmt.Sprintf("SELECT count(*) FROM bi.series s JOIN bi.samples x ON x.series_id = s.series_id AND 1 / (x.value - %v) > 0", m),
			fmt.Sprintf("SELECT value FROM bi.samples ORDER BY 1 / (value - %v) LIMIT 1", m),
			fmt.Sprintf("SELECT max(1 / (value - %v)) OVER () FROM bi.samples LIMIT 1", m),
			fmt.Sprintf("SELECT (SELECT count(*) FROM bi.samples_5m WHERE 1 / (sum_value / sample_count - %v) > 0)", m),
			// A series id of bravo's, given outright: ids are global, but the row is not alpha's.
			fmt.Sprintf("SELECT count(*) FROM bi.samples WHERE series_id = %d AND 1 / (value - %v) > 0", w.bravo.seriesID, m),
		}
		for _, probe := range probes {
			if _, err := rows(ctx, alpha, probe); err != nil {
				t.Errorf("as alpha: %s\n  failed: %v (the probe saw a row of bravo's)", probe, err)
			}
			if _, err := rows(ctx, bravo, probe); sqlState(err) != "22012" {
				t.Errorf("as bravo (the control): %s\n  = %v, want division by zero", probe, err)
			}
		}

		// An error message quotes the value that failed: alpha's own, never bravo's.
		_, err := rows(ctx, alpha, "SELECT count(*) FROM bi.hosts WHERE host_name::integer > 0")
		if sqlState(err) != "22P02" || !strings.Contains(err.Error(), "alpha-web-") || strings.Contains(err.Error(), "bravo") {
			t.Errorf("a failing cast: %v, want it to quote one of alpha's names", err)
		}
		// A leakproof condition on bravo's names is taken into the view and finds nothing.
		var n int
		if err := alpha.QueryRow(ctx, "SELECT count(*) FROM bi.samples_5m WHERE host_name = 'bravo-web-1'").Scan(&n); err != nil || n != 0 {
			t.Errorf("alpha counting bravo's host: %d (%v), want 0", n, err)
		}
	})
}

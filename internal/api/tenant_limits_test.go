package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// limitsOf is the "limits" object of an answer.
func limitsOf(t *testing.T, r response) map[string]any {
	t.Helper()
	l, ok := r.json["limits"].(map[string]any)
	if !ok {
		t.Fatalf("no limits in %s", r.raw)
	}
	return l
}

// usageOf is the "usage" object of an answer.
func usageOf(t *testing.T, r response) map[string]any {
	t.Helper()
	u, ok := r.json["usage"].(map[string]any)
	if !ok {
		t.Fatalf("no usage in %s", r.raw)
	}
	return u
}

// The operator reads and sets a tenant's limits; only the operator token reaches them; every bad field is
// refused by name and nothing changes then; the tenant sees the new limits at once, with the caps this
// server applies; the change is in the tenant's audit log; the other tenant keeps its limits.
func TestOperatorSetsTenantLimits(t *testing.T) {
	w := newWorld(t, testLimits)
	path := "/api/v1/operator/tenants/" + w.a.id.String() + "/limits"
	key := w.ingestKey(t, w.a)
	for _, method := range []string{"GET", "PATCH"} {
		for name, cred := range map[string]string{"no credential": "", "a wrong token": "wrong-token",
			"the tenant's owner": w.a.tokens["owner"], "the tenant's API key": key} {
			if got := w.call(t, method, path, cred, map[string]any{"ingest_rate": 1}); got.status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d, want 401: %s", method, path, name, got.status, got.raw)
			}
		}
	}

	got := w.call(t, "GET", path, operatorToken, nil).must(t, http.StatusOK)
	l := limitsOf(t, got)
	if got.str("tenant_id") != w.a.id.String() || got.str("slug") != "alpha" || l["ingest_rate"] != 10000.0 || l["max_series"] != 150000.0 ||
		l["max_streams"] != nil || l["max_heavy_reads"] != nil || l["effective_max_streams"] != float64(testStreamsPerTenant) ||
		l["effective_max_heavy_reads"].(float64) < 1 {
		t.Fatalf("the defaults: %s", got.raw)
	}
	serverHeavy := l["effective_max_heavy_reads"]
	if u := usageOf(t, got); u["series"] != 0.0 || u["checks"] != 0.0 || u["samples_last_minute"] != 0.0 {
		t.Errorf("usage of a new tenant: %s", got.raw)
	}
	w.call(t, "GET", "/api/v1/operator/tenants/00000000-0000-0000-0000-000000000001/limits", operatorToken, nil).must(t, http.StatusNotFound)
	w.call(t, "PATCH", "/api/v1/operator/tenants/00000000-0000-0000-0000-000000000001/limits", operatorToken,
		map[string]any{"max_checks": 5}).must(t, http.StatusNotFound)
	w.call(t, "GET", "/api/v1/operator/tenants/not-a-uuid/limits", operatorToken, nil).must(t, http.StatusNotFound)

	// Every bad field is named; nothing is changed, the good field of the same body included.
	bad := w.call(t, "PATCH", path, operatorToken, `{"ingest_rate": 0, "max_streams": "5", "bogus": 1, "max_series": null,
		"max_checks": 1.5, "max_heavy_reads": 1001, "ingest_burst": 7}`).must(t, http.StatusBadRequest)
	if ct := bad.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("content type %q", ct)
	}
	for _, field := range []string{"ingest_rate", "max_streams", "bogus", "max_series", "max_checks", "max_heavy_reads"} {
		if !strings.Contains(bad.raw, `"field":"`+field+`"`) {
			t.Errorf("the refusal does not name %s: %s", field, bad.raw)
		}
	}
	if strings.Contains(bad.raw, `"field":"ingest_burst"`) {
		t.Errorf("a valid field is named: %s", bad.raw)
	}
	for _, body := range []string{`{}`, `[]`, `null`, `{"ingest_rate": 5`} {
		w.call(t, "PATCH", path, operatorToken, body).must(t, http.StatusBadRequest)
	}
	if l := limitsOf(t, w.call(t, "GET", path, operatorToken, nil).must(t, http.StatusOK)); l["ingest_burst"] != 200000.0 || l["ingest_rate"] != 10000.0 {
		t.Fatalf("a refused change changed limits: %v", l)
	}

	set := w.call(t, "PATCH", path, operatorToken, map[string]any{"max_streams": 2, "max_heavy_reads": 1, "max_checks": 7,
		"max_label_value_length": 100}).must(t, http.StatusOK)
	l = limitsOf(t, set)
	if l["max_streams"] != 2.0 || l["effective_max_streams"] != 2.0 || l["max_heavy_reads"] != 1.0 || l["effective_max_heavy_reads"] != 1.0 ||
		l["max_checks"] != 7.0 || l["max_label_value_length"] != 100.0 || l["ingest_rate"] != 10000.0 {
		t.Fatalf("after PATCH: %s", set.raw)
	}
	// The tenant sees them, with its usage.
	mine := w.call(t, "GET", "/api/v1/tenant", w.a.tokens["viewer"], nil).must(t, http.StatusOK)
	if ml := limitsOf(t, mine); fmt.Sprint(ml) != fmt.Sprint(l) {
		t.Errorf("the tenant sees limits %v, the operator set %v", ml, l)
	}
	if u := usageOf(t, mine); u["checks"] != 0.0 || u["samples_this_minute"] != 0.0 || u["minute"] == nil {
		t.Errorf("the tenant's usage: %s", mine.raw)
	}
	audit := w.call(t, "GET", "/api/v1/audit", w.a.tokens["admin"], nil).must(t, http.StatusOK)
	if !strings.Contains(audit.raw, `"actor_kind":"operator","actor_id":"operator-token","action":"tenant.limits"`) ||
		!strings.Contains(audit.raw, `"max_streams":2`) {
		t.Errorf("the tenant's audit log lacks the operator's change: %s", audit.raw)
	}

	// null sets an override back to the server's cap.
	l = limitsOf(t, w.call(t, "PATCH", path, operatorToken, map[string]any{"max_heavy_reads": nil}).must(t, http.StatusOK))
	if l["max_heavy_reads"] != nil || l["effective_max_heavy_reads"] != serverHeavy || l["max_streams"] != 2.0 {
		t.Errorf("after max_heavy_reads null: %v", l)
	}
	other := limitsOf(t, w.call(t, "GET", "/api/v1/tenant", w.b.tokens["viewer"], nil).must(t, http.StatusOK))
	if other["max_streams"] != nil || other["max_checks"] != 1000.0 || other["max_label_value_length"] != 2048.0 {
		t.Errorf("tenant B's limits changed: %v", other)
	}
	// A tenant cannot set its own limits through its PATCH.
	w.call(t, "PATCH", "/api/v1/tenant", w.a.tokens["owner"], map[string]any{"limits": map[string]any{"max_checks": 100000}}).
		must(t, http.StatusBadRequest)
}

// A tenant's max_streams replaces the server's cap at the next request: the stream past it is refused
// with 429 naming the cap, the other tenant keeps the server's cap, and a raised cap admits the next one.
func TestTenantMaxStreamsCapsLiveStreams(t *testing.T) {
	w := newWorld(t, testLimits)
	w.waitHub(t)
	path := "/api/v1/operator/tenants/" + w.a.id.String() + "/limits"
	w.call(t, "PATCH", path, operatorToken, map[string]any{"max_streams": 2}).must(t, http.StatusOK)
	viewer := w.a.tokens["viewer"]
	w.openStream(t, viewer, "", nil)
	w.openStream(t, viewer, "", nil)
	got := w.call(t, "GET", "/api/v1/stream", viewer, nil)
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" || !strings.Contains(got.raw, "(2)") {
		t.Fatalf("stream 3 of A with max_streams 2: %d %s, want 429 naming the cap", got.status, got.raw)
	}
	for range 3 { // B: the server's cap of 4
		w.openStream(t, w.b.tokens["viewer"], "", nil)
	}
	w.call(t, "PATCH", path, operatorToken, map[string]any{"max_streams": 3}).must(t, http.StatusOK)
	w.openStream(t, viewer, "", nil)
	if got := w.call(t, "GET", "/api/v1/stream", viewer, nil); got.status != http.StatusTooManyRequests {
		t.Fatalf("stream 4 of A with max_streams 3: %d %s, want 429", got.status, got.raw)
	}
}

// A changed ingest_rate and ingest_burst apply to the next push (in the process that served the change),
// and the tenant's usage counts exactly the samples stored: not the pushes refused, not the samples
// refused inside an accepted push, not a retried push's samples, which were stored before.
func TestChangedIngestLimitsApplyAndUsageCountsStoredSamples(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		path := "/api/v1/operator/tenants/" + w.a.id.String() + "/limits"
		now := time.Now().UnixMilli()
		push := func(metric string, n int, extra string) response {
			t.Helper()
			points := make([]string, n)
			for i := range points {
				points[i] = fmt.Sprintf("[%d, %d]", now-int64(i)*1000, i)
			}
			return w.raw(t, "/api/v1/ingest", key, []byte(`{"metrics": [{"name": "`+metric+`", "points": [`+
				strings.Join(points, ",")+`]}`+extra+`]}`))
		}
		// Generous at first: 8 samples in, one more series refused for its labels.
		tooManyLabels := `, {"name": "wide", "labels": {` + manyLabels(31) + `}, "points": [[` + fmt.Sprint(now) + `, 1]]}`
		first := push("m1", 8, tooManyLabels).must(t, http.StatusOK)
		if first.json["accepted"] != 8.0 {
			t.Fatalf("first push: %s", first.raw)
		}

		w.call(t, "PATCH", path, operatorToken, map[string]any{"ingest_rate": 1, "ingest_burst": 5}).must(t, http.StatusOK)
		if big := push("m2", 6, ""); big.status != http.StatusRequestEntityTooLarge || !strings.Contains(big.raw, "burst of 5") {
			t.Fatalf("6 samples over a new burst of 5: %d %s", big.status, big.raw)
		}
		push("m2", 5, "").must(t, http.StatusOK)
		// The 5 tokens are spent; at 1 sample/s the next 5 wait about 5 s.
		if again := push("m3", 5, ""); again.status != http.StatusTooManyRequests || again.header.Get("Retry-After") == "" {
			t.Fatalf("5 more samples at a rate of 1/s: %d %s, want 429", again.status, again.raw)
		}
		w.call(t, "PATCH", path, operatorToken, map[string]any{"ingest_rate": 1000000, "ingest_burst": 1000000}).must(t, http.StatusOK)
		push("m3", 5, "").must(t, http.StatusOK)
		// A retried push is acknowledged again; its samples are stored once and counted once.
		if retry := push("m3", 5, "").must(t, http.StatusOK); retry.json["accepted"] != 5.0 {
			t.Fatalf("retried push: %s", retry.raw)
		}

		const stored = 8 + 5 + 5
		var inTable int
		if err := w.d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM ts.samples WHERE tenant_id = $1`, w.a.id).Scan(&inTable); err != nil {
			t.Fatal(err)
		}
		if inTable != stored {
			t.Fatalf("%d samples stored, want %d", inTable, stored)
		}
		for who, r := range map[string]response{
			"tenant":   w.call(t, "GET", "/api/v1/tenant", w.a.tokens["viewer"], nil).must(t, http.StatusOK),
			"operator": w.call(t, "GET", path, operatorToken, nil).must(t, http.StatusOK),
		} {
			u := usageOf(t, r)
			// The pushes may straddle a minute's end: the last complete minute and this one hold them all.
			if n := u["samples_last_minute"].(float64) + u["samples_this_minute"].(float64); n != stored || u["series"] != 3.0 {
				t.Errorf("usage seen by the %s: %s, want %d samples in 3 series", who, r.raw, stored)
			}
			if u["samples_per_second"] != u["samples_last_minute"].(float64)/60 {
				t.Errorf("usage seen by the %s: samples_per_second is not the last minute's over 60 s: %s", who, r.raw)
			}
		}
		if u := usageOf(t, w.call(t, "GET", "/api/v1/tenant", w.b.tokens["viewer"], nil).must(t, http.StatusOK)); u["samples_this_minute"] != 0.0 ||
			u["samples_last_minute"] != 0.0 {
			t.Errorf("tenant B's usage counts A's samples: %v", u)
		}
	})
}

// A tenant's max_heavy_reads replaces --heavy-reads-per-tenant for it at the next request: with 1, one
// log search holds A's only slot and the others are refused naming the cap, while B keeps the server's
// share.
func TestTenantMaxHeavyReadsCapsHeavyReads(t *testing.T) {
	w := newWorldCustom(t, db.FlavorPostgres, testLimits, func(d *api.Deps) {
		d.Config.HeavyReads = api.HeavyReadLimits{PerTenant: 2, Total: 3, Wait: 50 * time.Millisecond}
		d.Tenants = d.Tenants.WithStatementTimeout(time.Minute) // the lock is held as long as the test needs
	})
	w.call(t, "PATCH", "/api/v1/operator/tenants/"+w.a.id.String()+"/limits", operatorToken, map[string]any{"max_heavy_reads": 1}).
		must(t, http.StatusOK)
	w.pushLogs(t, w.a, "web-1", []map[string]any{{"time": time.Now().Add(-time.Minute).UnixMilli(), "message": "hello"}})
	w.pushLogs(t, w.b, "web-1", []map[string]any{{"time": time.Now().Add(-time.Minute).UnixMilli(), "message": "hello"}})

	release := lockTables(t, w, "ts.logs")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	const searches = 3
	answers := make(chan response, searches)
	for range searches {
		go func() {
			got, err := w.getWithin(ctx, "/api/v1/logs?q=hello", w.a.tokens["viewer"])
			if err != nil {
				got = response{raw: err.Error()}
			}
			answers <- got
		}()
	}
	for i := range searches - 1 {
		select {
		case got := <-answers:
			if got.status != http.StatusTooManyRequests || !strings.Contains(got.raw, "1 at once for this tenant") {
				t.Fatalf("A's log search %d beyond its max_heavy_reads of 1: %d %s, want 429 naming the cap", i+1, got.status, got.raw)
			}
		case <-ctx.Done():
			t.Fatalf("A's searches beyond its max_heavy_reads: %d of %d answered", i, searches-1)
		}
	}
	// B's share is the server's 2: one slot of the 3 in all is A's, so B's heavy read runs (its search
	// waits for the lock too, so a series listing).
	if got := w.mustGetWithin(t, "B's series list", "/api/v1/series", w.b.tokens["viewer"]); got.status != http.StatusOK {
		t.Errorf("B's heavy read while A's only slot is taken: %d %s", got.status, got.raw)
	}
	release()
	select {
	case got := <-answers:
		if got.status != http.StatusOK || !strings.Contains(got.raw, `"message":"hello"`) {
			t.Errorf("A's waiting search after the lock went: %d %s", got.status, got.raw)
		}
	case <-ctx.Done():
		t.Fatal("A's waiting search never answered")
	}
}

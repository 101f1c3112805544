package poller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
)

// A check's secrets are sealed apart from its settings: the poller opens them for the probe — sealed
// ones, and those a migration staged that serve has not sealed yet — and the target receives them. A
// check whose secrets do not open is down, saying so, and sends nothing.
func TestProbesSendTheSealedSecrets(t *testing.T) {
	w := newPollerWorld(t, db.FlavorPostgres)
	got := make(chan string, 10)
	site := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer site.Close()
	ctx := context.Background()
	settings := `{"headers": {"Authorization": "Bearer sealed-token"}}`
	public, sealed, err := checks.SealSecrets(testKeys(t), w.tenant.ID, "http", []byte(settings))
	if err != nil {
		t.Fatal(err)
	}
	id := w.addCheck(t, w.tenant.ID, "http", site.URL, string(public))
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET secrets = $2 WHERE id = $1`, id, sealed); err != nil {
		t.Fatal(err)
	}
	if res, err := w.runner.RunNowForTenant(ctx, w.tenant.ID, id); err != nil || res.Status != "up" {
		t.Fatalf("run: %+v %v", res, err)
	}
	if a := <-got; a != "Bearer sealed-token" {
		t.Errorf("the target received Authorization %q, want the sealed secret", a)
	}

	staged := w.addCheck(t, w.tenant.ID, "http", site.URL, `{"headers": {"Authorization": "********"}}`)
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET secrets_staging = '{"headers": {"Authorization": "Bearer staged"}}'
	                                 WHERE id = $1`, staged); err != nil {
		t.Fatal(err)
	}
	if _, err := w.runner.RunNowForTenant(ctx, w.tenant.ID, staged); err != nil {
		t.Fatal(err)
	}
	if a := <-got; a != "Bearer staged" {
		t.Errorf("the target received Authorization %q, want the staged secret", a)
	}

	other := w.secondTenant(t, "other")
	moved := w.addCheck(t, other.ID, "http", site.URL, string(public))
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET secrets = $2 WHERE id = $1`, moved, sealed); err != nil {
		t.Fatal(err)
	}
	res, err := w.runner.RunNowForTenant(ctx, other.ID, moved)
	if err != nil || res.Status != "down" || res.Reason == "" {
		t.Fatalf("a check with another tenant's sealed secrets: %+v %v", res, err)
	}
	select {
	case a := <-got:
		t.Errorf("the target was reached with %q", a)
	default:
	}
}

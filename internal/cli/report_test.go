package cli

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/sla"
)

// `report render` writes the report's files without sending; the PDF's text (pdftotext) carries the
// numbers GET /api/v1/sla answers (internal/sla's, which TestSLA holds the API to), in Portuguese; the
// report holds no check of another tenant.
func TestReportRender(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	exec1 := func(sql string, args ...any) {
		t.Helper()
		if _, err := d.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	tenant := func(slug, check string) (uuid.UUID, int64) {
		var id uuid.UUID
		var c int64
		if err := d.Pool.QueryRow(ctx, `INSERT INTO app.tenants (slug, name, time_zone) VALUES ($1, $1, 'America/Sao_Paulo') RETURNING id`,
			slug).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if err := d.Pool.QueryRow(ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, created_at)
			VALUES ($1, $2, 'http', 'http://127.0.0.1:1/', '2026-10-01T00:00:00Z') RETURNING id`, id, check).Scan(&c); err != nil {
			t.Fatal(err)
		}
		exec1(`INSERT INTO ts.check_results (time, tenant_id, check_id, status)
			SELECT t, $1, $2, CASE WHEN t >= '2026-10-14T13:00:05Z' AND t < '2026-10-14T13:20:05Z' THEN 'down' ELSE 'up' END
			  FROM generate_series('2026-10-01T00:00:05Z'::timestamptz, '2026-11-02T00:00:00Z', '1 minute') t`, id, c)
		exec1(`INSERT INTO app.check_events (tenant_id, check_id, time, status, reason) VALUES ($1, $2, '2026-10-01T00:00:05Z', 'up', ''),
			($1, $2, '2026-10-14T13:00:05Z', 'down', 'conexão recusada'), ($1, $2, '2026-10-14T13:20:05Z', 'up', '')`, id, c)
		return id, c
	}
	exec1(`SELECT infrawatch.ensure_partitions('ts.check_results', '2026-09-30', '2026-11-03')`)
	a, checkA := tenant("acme", "loja")
	_, checkB := tenant("other", "segredo-de-b")
	var report int64
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.reports (tenant_id, name, check_ids, period, schedule, recipients, formats, language,
		next_run_at, next_period) VALUES ($1, 'mensal', ARRAY[$2::bigint, $3::bigint], 'monthly', '0 7 1 * *', '{ops@example.test}',
		'{csv,pdf}', 'pt-BR', now(), '2026-12') RETURNING id`, a, checkA, checkB).Scan(&report); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := run(t, "report", "render", "--database-url", d.URL, "--report", strconv.FormatInt(report, 10),
		"--period", "2026-10", "--out", out)
	if code != 0 {
		t.Fatalf("report render: %d %s %s", code, stdout, stderr)
	}
	for _, f := range []string{"report.html", "report.txt", "report.csv", "report.pdf", "strip-1.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	csvText, _ := os.ReadFile(filepath.Join(out, "report.csv"))
	if !strings.Contains(string(html), `src="strip-1.png"`) || strings.Contains(string(html)+string(csvText), "segredo-de-b") {
		t.Fatalf("the preview does not show its strip, or shows B's check:\n%s", html)
	}
	// The numbers of the API for the same check and month.
	sp, _ := time.LoadLocation("America/Sao_Paulo")
	p, _ := sla.ParsePeriod("2026-10", sp)
	var n sla.Numbers
	if err := db.NewTenantRunner(d.Pool).WithTenant(ctx, a, func(q *dbsqlc.Queries) (err error) {
		n, err = sla.Compute(ctx, q, sla.Scope{CheckIDs: []int64{checkA}}, sla.Options{From: p.Start, To: p.End, Location: sp,
			ExcludeMaintenance: true}, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n.Seconds.Down != 1200 || len(n.Incidents) != 1 {
		t.Fatalf("numbers %+v", n.Summary)
	}
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext is not installed (Debian: poppler-utils); the PDF's text is not checked")
	}
	text, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", filepath.Join(out, "report.pdf"), "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v %s", err, text)
	}
	avail := strings.Replace(strconv.FormatFloat(math.Floor(*n.Availability*1000)/1000, 'f', 3, 64), ".", ",", 1) + " %"
	for _, want := range []string{"Relatório de SLA: mensal", "outubro de 2026", avail, "20 min 00 s", "14/10/2026 10:00:05",
		"conexão recusada"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the PDF lacks %q:\n%s", want, text)
		}
	}
}

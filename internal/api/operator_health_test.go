package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
)

// GET /api/v1/operator/health answers the operator alone, and says what is wrong with the storage jobs
// and what to do, before any scheduler ran and after one did, while /readyz stays ready.
func TestOperatorHealthSaysWhatIsWrong(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		for _, cred := range []string{"", "wrong-token", w.a.tokens["owner"]} {
			w.call(t, "GET", "/api/v1/operator/health", cred, nil).must(t, http.StatusUnauthorized)
		}

		type job struct {
			Job, Kind, Runner, State string
			Problem, Advice          *string
			Watermark                *string
			WatermarkLagSeconds      *float64 `json:"watermark_lag_seconds"`
			TimescaleDB              *struct {
				JobID     int  `json:"job_id"`
				Scheduled bool `json:"scheduled"`
			}
		}
		type report struct {
			Status, Flavor string
			Scheduler      struct{ Mode, Problem, Advice *string }
			Jobs           []job
		}
		read := func() report {
			t.Helper()
			var rep report
			raw := w.call(t, "GET", "/api/v1/operator/health", operatorToken, nil).must(t, http.StatusOK).raw
			if err := json.Unmarshal([]byte(raw), &rep); err != nil {
				t.Fatalf("decode %s: %v", raw, err)
			}
			return rep
		}
		names := func(rep report) []string {
			var n []string
			for _, j := range rep.Jobs {
				n = append(n, j.Job)
			}
			return n
		}
		wantJobs := []string{"refresh_samples_5m", "refresh_check_results_1h", "refresh_samples_1h", "refresh_check_results_1d",
			"refresh_samples_1d", "retention"}
		if flavor == db.FlavorTimescale {
			wantJobs = slices.Insert(wantJobs, 5, "compress_check_results", "compress_logs", "compress_samples")
		}

		// No scheduler yet. (The test harness pauses TimescaleDB's refresh policies: that is what the
		// timescale flavor reports.)
		rep := read()
		if rep.Flavor != string(flavor) || !slices.Equal(names(rep), wantJobs) {
			t.Fatalf("flavor %s, jobs %v; want %s, %v", rep.Flavor, names(rep), flavor, wantJobs)
		}
		if rep.Status == "ok" || rep.Scheduler.Problem == nil || !strings.Contains(*rep.Scheduler.Problem, "No scheduler has checked") ||
			!strings.Contains(*rep.Scheduler.Advice, "--roles scheduler") {
			t.Errorf("before any scheduler: status %s, scheduler %+v", rep.Status, rep.Scheduler)
		}
		for _, j := range rep.Jobs {
			wantState, wantProblem := "unknown", "infrawatch has not run it yet"
			if j.TimescaleDB != nil && j.Kind == "refresh" {
				wantState, wantProblem = "failing", "is paused (scheduled => false)"
			}
			if j.TimescaleDB != nil && j.Kind == "compression" {
				continue // whatever TimescaleDB's background worker did with it here
			}
			if j.State != wantState || j.Problem == nil || !strings.Contains(*j.Problem, wantProblem) || j.Advice == nil {
				t.Errorf("before any scheduler, %s: %s, %v; want %s, %q and advice", j.Job, j.State, orNil(j.Problem), wantState, wantProblem)
			}
		}
		w.call(t, "GET", "/readyz", "", nil).must(t, http.StatusOK)

		// A scheduler runs (infrawatch runs TimescaleDB's jobs too): every job is fine, or taken over.
		svc := maintenance.New(maintenance.Config{TimescaleJobs: maintenance.ModeInfrawatch}, w.d.System(),
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx := context.Background()
		if ran, err := svc.RunOnce(ctx); !ran || err != nil {
			t.Fatalf("storage pass: %v %v", ran, err)
		}
		if ran, err := svc.RefreshOnce(ctx); !ran || err != nil {
			t.Fatalf("refresh: %v %v", ran, err)
		}
		rep = read()
		wantStatus := map[db.Flavor]string{db.FlavorPostgres: "ok", db.FlavorTimescale: "degraded"}[flavor]
		if rep.Status != wantStatus || rep.Scheduler.Problem != nil || orNil(rep.Scheduler.Mode) != "infrawatch" {
			t.Errorf("after a scheduler's pass: status %s, scheduler problem %v, mode %v; want %s, none, infrawatch", rep.Status,
				orNil(rep.Scheduler.Problem), orNil(rep.Scheduler.Mode), wantStatus)
		}
		for _, j := range rep.Jobs {
			want := "ok"
			if j.TimescaleDB != nil {
				want = "taken_over"
			}
			if j.State != want || j.Runner != "infrawatch" {
				t.Errorf("after a scheduler's pass, %s: %s by %s (%v); want %s by infrawatch", j.Job, j.State, j.Runner, orNil(j.Problem), want)
			}
			if want == "taken_over" && (j.Advice == nil || !strings.Contains(*j.Advice, "Nothing is lost")) {
				t.Errorf("%s taken over: advice %v", j.Job, orNil(j.Advice))
			}
			if j.Kind == "refresh" && (j.Watermark == nil || j.WatermarkLagSeconds == nil || *j.WatermarkLagSeconds < 0) {
				t.Errorf("%s: watermark %v, lag %v after a refresh; want both", j.Job, orNil(j.Watermark), j.WatermarkLagSeconds)
			}
		}
	})
}

func orNil(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

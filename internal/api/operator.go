package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// The operator routes manage tenants for the platform operator, who authenticates with the operator
// token (INFRAWATCH_OPERATOR_TOKEN), not as any tenant's user, and tell the operator how the storage
// jobs are doing (GET /api/v1/operator/health).

type createTenantInput struct {
	Name          string `json:"name"`
	Slug          string `json:"slug"`
	AdminEmail    string `json:"admin_email"`
	AdminPassword string `json:"admin_password"`
}

func (s *server) operatorCreateTenant(c *gin.Context) {
	var in createTenantInput
	if !decodeBody(c, &in) {
		return
	}
	var errs fieldErrors
	if strings.TrimSpace(in.Name) == "" {
		errs.add("name", "is required")
	}
	if !strings.Contains(in.AdminEmail, "@") {
		errs.add("admin_email", "must be an email address")
	}
	if in.AdminPassword != "" {
		if err := auth.CheckPassword(in.AdminPassword, in.AdminEmail); err != nil {
			errs.add("admin_password", "%s", err)
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	created, err := s.operator.Create(c.Request.Context(), tenant.NewTenant{Name: in.Name, Slug: in.Slug,
		AdminEmail: in.AdminEmail, AdminPassword: in.AdminPassword})
	switch {
	case errors.Is(err, tenant.ErrInvalid):
		writeProblem(c, http.StatusBadRequest, "invalid request", strings.TrimPrefix(err.Error(), "create tenant: "))
		return
	case errors.Is(err, db.ErrConflict):
		writeProblem(c, http.StatusConflict, "tenant not created", "the slug is taken; choose another")
		return
	case err != nil:
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusCreated, created)
}

func (s *server) operatorListTenants(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	after, _ := uuid.Parse(cursor)
	rows, err := s.operator.List(c.Request.Context(), after, limit)
	if err != nil {
		s.answerError(c, err)
		return
	}
	out := make([]Tenant, 0, len(rows))
	for _, t := range rows {
		out = append(out, s.tenantOut(t))
	}
	c.JSON(http.StatusOK, newPage(out, limit, func(t Tenant) string { return t.ID.String() }))
}

func (s *server) operatorSetStatus(c *gin.Context, status string) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	t, err := s.operator.SetStatus(c.Request.Context(), id, status)
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.tenantOut(t))
}

func (s *server) operatorSuspendTenant(c *gin.Context) { s.operatorSetStatus(c, "suspended") }

func (s *server) operatorResumeTenant(c *gin.Context) { s.operatorSetStatus(c, "active") }

func (s *server) operatorDeleteTenant(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	if err := s.operator.Delete(c.Request.Context(), id); err != nil {
		s.answerError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// StorageHealth is GET /api/v1/operator/health: how the storage jobs are doing (maintenance.Health).
type StorageHealth struct {
	// Status is ok, degraded (a job is taken over, lagging or not checked yet) or failing.
	Status    string            `json:"status"`
	Flavor    string            `json:"flavor"`
	Scheduler StorageScheduler  `json:"scheduler"`
	Jobs      []StorageJobState `json:"jobs"`
}

// StorageScheduler is the scheduler role's last check of the storage jobs.
type StorageScheduler struct {
	Mode                 *string    `json:"mode"` // --timescale-jobs; null before the first check
	CheckedAt            *time.Time `json:"checked_at"`
	CheckIntervalSeconds *float64   `json:"check_interval_seconds"`
	Problem              *string    `json:"problem"`
	Advice               *string    `json:"advice"`
}

// StorageJobState is one storage job.
type StorageJobState struct {
	Job                 string            `json:"job"`
	Kind                string            `json:"kind"`
	Relation            *string           `json:"relation"`
	Runner              string            `json:"runner"`
	State               string            `json:"state"`
	Problem             *string           `json:"problem"`
	Advice              *string           `json:"advice"`
	LastSuccess         *time.Time        `json:"last_success"`
	ConsecutiveFailures int               `json:"consecutive_failures"`
	TakenOverAt         *time.Time        `json:"taken_over_at"`
	Watermark           *time.Time        `json:"watermark"`
	WatermarkLagSeconds *float64          `json:"watermark_lag_seconds"`
	BacklogChunks       *int              `json:"backlog_chunks"`
	Infrawatch          StorageJobRuns    `json:"infrawatch"`
	TimescaleDB         *TimescaleDBJobAt `json:"timescaledb"`
}

// StorageJobRuns are one runner's runs of a job.
type StorageJobRuns struct {
	LastSuccess         *time.Time `json:"last_success"`
	LastFailure         *time.Time `json:"last_failure"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastError           *string    `json:"last_error"`
	EverySeconds        *float64   `json:"every_seconds"`
}

// TimescaleDBJobAt is TimescaleDB's job of the same work.
type TimescaleDBJobAt struct {
	JobID        int        `json:"job_id"`
	Scheduled    bool       `json:"scheduled"`
	FailingSince *time.Time `json:"failing_since"`
	StorageJobRuns
}

func (s *server) operatorHealth(c *gin.Context) {
	if s.storageHealth == nil {
		writeProblem(c, http.StatusServiceUnavailable, "storage health unavailable", "this server does not read the storage jobs")
		return
	}
	rep, err := s.storageHealth.Report(c.Request.Context())
	if err != nil {
		s.answerError(c, err)
		return
	}
	out := StorageHealth{Status: rep.Status, Flavor: rep.Flavor, Jobs: make([]StorageJobState, 0, len(rep.Jobs)),
		Scheduler: StorageScheduler{Mode: nonEmpty(string(rep.Scheduler.Mode)), CheckedAt: utc(rep.Scheduler.CheckedAt),
			CheckIntervalSeconds: seconds(rep.Scheduler.CheckInterval), Problem: nonEmpty(rep.Scheduler.Problem),
			Advice: nonEmpty(rep.Scheduler.Advice)}}
	for _, j := range rep.Jobs {
		js := StorageJobState{Job: j.Name, Kind: j.Kind, Relation: nonEmpty(j.Relation), Runner: string(j.Runner), State: string(j.State),
			Problem: nonEmpty(j.Problem), Advice: nonEmpty(j.Advice), LastSuccess: utc(j.LastSuccess()),
			ConsecutiveFailures: j.ConsecutiveFailures(), TakenOverAt: utc(j.TakenOverAt), Watermark: utc(j.Watermark),
			BacklogChunks: j.BacklogChunks, Infrawatch: runsOut(j.Infrawatch)}
		if j.WatermarkLag != nil {
			lag := j.WatermarkLag.Seconds() // 0 is a lag too: nothing waits
			js.WatermarkLagSeconds = &lag
		}
		if t := j.TimescaleDB; t != nil {
			js.TimescaleDB = &TimescaleDBJobAt{JobID: t.ID, Scheduled: t.Scheduled, FailingSince: utc(t.FailingSince), StorageJobRuns: runsOut(t.Runs)}
		}
		out.Jobs = append(out.Jobs, js)
	}
	c.JSON(http.StatusOK, out)
}

func runsOut(r maintenance.Runs) StorageJobRuns {
	return StorageJobRuns{LastSuccess: utc(r.LastSuccess), LastFailure: utc(r.LastFailure), ConsecutiveFailures: r.ConsecutiveFailures,
		LastError: nonEmpty(r.LastError), EverySeconds: seconds(r.Every)}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// seconds is d in seconds, null when zero (not set).
func seconds(d time.Duration) *float64 {
	if d == 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

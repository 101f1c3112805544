package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Alert rules: /api/v1/alert-rules. internal/alerting validates and compiles a rule (its kind's
// settings included) and runs backtests; the handlers read requests, store rules as the tenant and
// shape answers.

// Backtester runs a rule that is not saved over a tenant's stored history (alerting.Backtester).
type Backtester interface {
	Backtest(ctx context.Context, tenant uuid.UUID, rule alerting.CompiledRule, from, to time.Time) (alerting.BacktestResult, error)
}

// AlertRule is a rule as the API shows it.
type AlertRule struct {
	ID             int64             `json:"id"`
	Name           string            `json:"name"`
	Kind           string            `json:"kind"`
	Severity       string            `json:"severity"`
	Labels         map[string]string `json:"labels"`
	Summary        string            `json:"summary"`
	Description    string            `json:"description"`
	For            string            `json:"for"`
	Interval       string            `json:"interval"`
	RepeatInterval string            `json:"repeat_interval"`
	Flapping       RuleFlapping      `json:"flapping"`
	Enabled        bool              `json:"enabled"`
	Channels       []int64           `json:"channels"`
	Escalation     []EscalationStep  `json:"escalation"`
	Settings       json.RawMessage   `json:"settings"`
	NextEvalAt     time.Time         `json:"next_eval_at"`
	LastEvalAt     *time.Time        `json:"last_eval_at"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// RuleFlapping is a rule's flapping detection.
type RuleFlapping struct {
	Changes int32  `json:"changes"`
	Window  string `json:"window"`
}

// EscalationStep is a step of a rule's escalation.
type EscalationStep struct {
	After    string  `json:"after"`
	Channels []int64 `json:"channels"`
}

func alertRuleOut(r dbsqlc.AppAlertRule) AlertRule {
	spec := alerting.RuleFromRow(r)
	steps := make([]EscalationStep, len(spec.Escalation))
	for i, s := range spec.Escalation {
		steps[i] = EscalationStep{After: alerting.FormatDuration(s.After), Channels: s.Channels}
	}
	return AlertRule{ID: r.ID, Name: r.Name, Kind: r.Kind, Severity: r.Severity, Labels: spec.Labels, Summary: r.Summary,
		Description: r.Description, For: alerting.FormatDuration(spec.For), Interval: alerting.FormatDuration(spec.Interval),
		RepeatInterval: alerting.FormatDuration(spec.Repeat),
		Flapping:       RuleFlapping{Changes: spec.FlapChanges, Window: alerting.FormatDuration(spec.FlapWindow)},
		Enabled:        r.Enabled, Channels: spec.Channels, Escalation: steps, Settings: r.Settings, NextEvalAt: r.NextEvalAt,
		LastEvalAt: r.LastEvalAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// problems turns a domain package's problems into the fields of a 400.
func problems(ps []alerting.Problem) fieldErrors {
	out := make(fieldErrors, len(ps))
	for i, p := range ps {
		out[i] = FieldError{Field: p.Field, Message: p.Message}
	}
	return out
}

func invalid(errs fieldErrors) error {
	return &problemError{status: http.StatusBadRequest, title: "invalid request", detail: "one or more fields are invalid; see errors",
		fields: errs}
}

// compileRule applies a request over base and compiles it, answering every problem: those of the
// fields it could not read, and those of the rule it makes (for the other fields).
func compileRule(in alerting.RuleInput, base alerting.RuleSpec, creating bool) (alerting.CompiledRule, fieldErrors) {
	spec, ps := in.Apply(base, creating)
	compiled, more := spec.Compile()
	named := map[string]bool{}
	for _, p := range ps {
		named[p.Field] = true
	}
	for _, p := range more {
		if !named[p.Field] {
			ps = append(ps, p)
		}
	}
	return compiled, problems(ps)
}

func (s *server) listAlertRules(c *gin.Context) {
	var params dbsqlc.AlertRuleListParams
	var errs fieldErrors
	if k := c.Query("kind"); k != "" {
		if _, ok := alerting.Lookup(k); !ok {
			errs.add("kind", "must be a kind of rule")
		}
		params.Kind = &k
	}
	if e := c.Query("enabled"); e != "" {
		b, err := strconv.ParseBool(e)
		if err != nil {
			errs.add("enabled", "must be true or false")
		}
		params.Enabled = &b
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppAlertRule, error) {
		params.AfterID, params.MaxRows = after, limit
		return q.AlertRuleList(c.Request.Context(), params)
	}, alertRuleOut, func(r AlertRule) int64 { return r.ID })
}

func (s *server) createAlertRule(c *gin.Context) {
	var in alerting.RuleInput
	if !decodeBody(c, &in) {
		return
	}
	rule, errs := compileRule(in, alerting.DefaultRule(), true)
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	var row dbsqlc.AppAlertRule
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		if ps, err := alerting.CheckChannels(ctx, q, rule.RuleSpec); err != nil {
			return err
		} else if len(ps) > 0 {
			return invalid(problems(ps))
		}
		params := ruleParams(rule)
		var err error
		row, err = q.AlertRuleCreate(ctx, dbsqlc.AlertRuleCreateParams{Name: params.Name, Kind: rule.Kind, Severity: params.Severity,
			Labels: params.Labels, Summary: params.Summary, Description: params.Description, ForSeconds: params.ForSeconds,
			IntervalSeconds: params.IntervalSeconds, RepeatSeconds: params.RepeatSeconds, FlapChanges: params.FlapChanges,
			FlapWindowSeconds: params.FlapWindowSeconds, Enabled: params.Enabled, Channels: params.Channels,
			Escalation: params.Escalation, Settings: params.Settings, Eval: params.Eval, CreatedBy: principal(c).CreatedBy()})
		if err != nil {
			return err
		}
		return record(c, q, "alert_rule.create", "alert_rule", strconv.FormatInt(row.ID, 10), gin.H{"name": row.Name, "kind": row.Kind})
	}) {
		return
	}
	c.JSON(http.StatusCreated, alertRuleOut(row))
}

// ruleParams are the columns of a compiled rule, as AlertRuleUpdate takes them.
func ruleParams(r alerting.CompiledRule) dbsqlc.AlertRuleUpdateParams {
	labels, _ := json.Marshal(r.Labels)
	return dbsqlc.AlertRuleUpdateParams{Name: r.Name, Severity: r.Severity, Labels: labels, Summary: r.Summary,
		Description: r.Description, ForSeconds: int32(r.For / time.Second), IntervalSeconds: int32(r.Interval / time.Second),
		RepeatSeconds: int32(r.Repeat / time.Second), FlapChanges: r.FlapChanges, FlapWindowSeconds: int32(r.FlapWindow / time.Second),
		Enabled: r.Enabled, Channels: r.Channels, Escalation: alerting.EscalationJSON(r.Escalation), Settings: r.Compiled.Settings,
		Eval: r.Eval}
}

func (s *server) getAlertRule(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var r dbsqlc.AppAlertRule
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) { r, err = q.AlertRuleGetByID(c.Request.Context(), id); return err }) {
		c.JSON(http.StatusOK, alertRuleOut(r))
	}
}

func (s *server) updateAlertRule(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in alerting.RuleInput
	if !decodeBody(c, &in) {
		return
	}
	var row dbsqlc.AppAlertRule
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.AlertRuleGetByID(ctx, id)
		if err != nil {
			return err
		}
		rule, errs := compileRule(in, alerting.RuleFromRow(stored), false)
		if len(errs) > 0 {
			return invalid(errs)
		}
		// Channels are checked when the request names them: a channel deleted since stays named and
		// skipped, and does not block other changes.
		if in.Channels != nil || in.Escalation != nil {
			if ps, err := alerting.CheckChannels(ctx, q, rule.RuleSpec); err != nil {
				return err
			} else if len(ps) > 0 {
				return invalid(problems(ps))
			}
		}
		params := ruleParams(rule)
		params.ID = id
		if row, err = q.AlertRuleUpdate(ctx, params); err != nil {
			return err
		}
		return record(c, q, "alert_rule.update", "alert_rule", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, alertRuleOut(row))
}

func (s *server) deleteAlertRule(c *gin.Context) {
	s.removeByID(c, "alert_rule.delete", "alert_rule", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.AlertRuleDelete(c.Request.Context(), id))
	})
}

// backtestInput is the body of POST /alert-rules/backtest: a rule as POST /alert-rules takes it (name
// optional), and the range, RFC 3339 or milliseconds (default: the last 24 hours).
type backtestInput struct {
	Rule *alerting.RuleInput `json:"rule"`
	From *string             `json:"from"`
	To   *string             `json:"to"`
}

// backtestAlertRule is POST /api/v1/alert-rules/backtest: the alerts a rule would have raised over the
// tenant's stored history, computed by the same statements as live evaluation. Nothing is saved.
func (s *server) backtestAlertRule(c *gin.Context) {
	var in backtestInput
	if !decodeBody(c, &in) {
		return
	}
	if in.Rule == nil {
		writeValidation(c, fieldErrors{{Field: "rule", Message: "is required: the rule to try, as POST /alert-rules takes it"}})
		return
	}
	if s.backtests == nil {
		writeProblem(c, http.StatusServiceUnavailable, "backtests cannot run in this process", "")
		return
	}
	ruleIn := *in.Rule
	if ruleIn.Name == nil {
		name := "backtest"
		ruleIn.Name = &name
	}
	rule, errs := compileRule(ruleIn, alerting.DefaultRule(), true)
	for i := range errs {
		errs[i].Field = "rule." + errs[i].Field
	}
	var to, from time.Time
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	to = parseTime(deref(in.To), time.Now(), "to", &errs)
	from = parseTime(deref(in.From), to.Add(-24*time.Hour), "from", &errs)
	if len(errs) == 0 {
		if _, err := alerting.BacktestTimes(from, to, rule.Interval); err != nil {
			errs.add("from", "%s", err.Error())
		}
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	res, err := s.backtests.Backtest(c.Request.Context(), principal(c).TenantID, rule, from, to)
	if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// CheckRunner runs a check at once on a user's request (POST /checks/{id}/run); the poller's Runner is
// the one the process wires.
type CheckRunner interface {
	// RunNowForTenant runs check id of tenant, stores its result and returns it: db.ErrNotFound when the
	// tenant has no such check, a *checks.TooSoonError when it ran moments ago.
	RunNowForTenant(ctx context.Context, tenant uuid.UUID, id int64) (checks.Result, error)
}

// Check is a check as the API shows it; secret settings are masked.
type Check struct {
	ID              int64           `json:"id"`
	Name            string          `json:"name"`
	Kind            string          `json:"kind"`
	Target          string          `json:"target"`
	IntervalSeconds int32           `json:"interval_seconds"`
	TimeoutSeconds  int32           `json:"timeout_seconds"`
	Location        *string         `json:"location"`
	HostID          *int64          `json:"host_id"`
	Settings        json.RawMessage `json:"settings"`
	Enabled         bool            `json:"enabled"`
	// ParentID is the check this one depends on: while it is down, this check's alerts are suppressed.
	ParentID *int64 `json:"parent_id"`
	// Status is up or down as of the last run; null before the first.
	Status       *string    `json:"status"`
	StatusReason string     `json:"status_reason"`
	StatusSince  *time.Time `json:"status_since"`
	LastRunAt    *time.Time `json:"last_run_at"`
	NextRunAt    time.Time  `json:"next_run_at"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// secretMask replaces secret settings in answers. Sending it back in an update keeps the stored value,
// as long as the check still sends it to the same place (see secretsFollow).
const secretMask = "********"

func checkOut(ch dbsqlc.AppCheck) Check {
	return Check{ID: ch.ID, Name: ch.Name, Kind: ch.Kind, Target: ch.Target, IntervalSeconds: ch.IntervalSeconds,
		TimeoutSeconds: ch.TimeoutSeconds, Location: ch.Location, HostID: ch.HostID, Settings: maskSecrets(ch.Kind, ch.Settings),
		Enabled: ch.Enabled, ParentID: ch.ParentID, Status: ch.Status, StatusReason: ch.StatusReason, StatusSince: ch.StatusSince,
		LastRunAt: ch.LastRunAt, NextRunAt: ch.NextRunAt, CreatedAt: ch.CreatedAt, UpdatedAt: ch.UpdatedAt}
}

// eachSecret calls fn with every secret of a settings object of kind — the settings its kind says are
// secret, and every value of those that are maps of secrets — named as the API names fields
// (settings.community, settings.headers.Authorization), and puts back what fn returns. A kind that does
// not exist has no secret: such a check is refused.
func eachSecret(kind string, settings map[string]json.RawMessage, fn func(field string, value json.RawMessage) json.RawMessage) {
	k, ok := checks.Lookup(kind)
	if !ok {
		return
	}
	secrets := k.Secrets()
	for _, name := range secrets.Settings {
		if v, ok := settings[name]; ok {
			settings[name] = fn("settings."+name, v)
		}
	}
	for _, name := range secrets.Maps {
		raw, ok := settings[name]
		if !ok {
			continue
		}
		var values map[string]json.RawMessage
		if json.Unmarshal(raw, &values) != nil {
			settings[name] = fn("settings."+name, raw) // not an object: secret as a whole
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(values)) {
			values[key] = fn("settings."+name+"."+key, values[key])
		}
		settings[name], _ = json.Marshal(values)
	}
}

// isMask tells the mask, and emptyText a secret that holds nothing (shown as is: it hides nothing).
func isMask(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s == secretMask
}

func emptyText(v json.RawMessage) bool { return string(v) == `""` || string(v) == "null" }

// maskSecrets answers settings with every secret masked, for every reader.
func maskSecrets(kind string, settings []byte) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(settings, &m) != nil {
		return json.RawMessage("{}") // stored settings are always an object; never show what cannot be masked
	}
	eachSecret(kind, m, func(_ string, v json.RawMessage) json.RawMessage {
		if emptyText(v) {
			return v
		}
		return json.RawMessage(strconv.Quote(secretMask))
	})
	out, _ := json.Marshal(m)
	return out
}

// storedSecrets returns the secrets of settings that hold something, by field name.
func storedSecrets(kind string, settings []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	var m map[string]json.RawMessage
	if json.Unmarshal(settings, &m) == nil {
		eachSecret(kind, m, func(field string, v json.RawMessage) json.RawMessage {
			if !emptyText(v) {
				out[field] = v
			}
			return v
		})
	}
	return out
}

// keepMaskedSecrets puts stored secrets back where incoming settings sent the mask, and returns the
// settings with the fields it kept that way. A mask where nothing is stored is refused.
func keepMaskedSecrets(kind string, incoming, stored []byte, errs *fieldErrors) (settings []byte, kept []string) {
	var in map[string]json.RawMessage
	if json.Unmarshal(incoming, &in) != nil {
		return incoming, nil // not an object: validation names it
	}
	old := storedSecrets(kind, stored)
	eachSecret(kind, in, func(field string, v json.RawMessage) json.RawMessage {
		if !isMask(v) {
			return v
		}
		if o, ok := old[field]; ok {
			kept = append(kept, field)
			return o
		}
		errs.add(field, "is the mask %s but there is no stored secret to keep; send the secret itself", secretMask)
		return v
	})
	out, _ := json.Marshal(in)
	return out, kept
}

// secretsFollow refuses stored secrets following a check to another destination: when an update
// changes where its kind sends the secrets (its Destination: the target, and for SNMP the version too),
// every secret must be sent again rather than kept from storage (by the mask, or by leaving settings
// out). Otherwise whoever may edit a check could point it at a host of theirs and receive the secret.
func secretsFollow(stored, merged dbsqlc.AppCheck, kept []string, errs *fieldErrors) {
	k, ok := checks.Lookup(stored.Kind)
	if len(kept) == 0 || !ok || k.Destination(stored.Target, stored.Settings) == k.Destination(merged.Target, merged.Settings) {
		return
	}
	for _, field := range kept {
		errs.add(field, "the target changed; send the secret again")
	}
}

// checkInput is the body of POST and PATCH /checks; absent fields keep their value on PATCH.
type checkInput struct {
	Name            *string          `json:"name"`
	Kind            *string          `json:"kind"`
	Target          *string          `json:"target"`
	IntervalSeconds *int32           `json:"interval_seconds"`
	TimeoutSeconds  *int32           `json:"timeout_seconds"`
	Location        *string          `json:"location"`
	HostID          *int64           `json:"host_id"`
	Settings        *json.RawMessage `json:"settings"`
	Enabled         *bool            `json:"enabled"`
	ParentID        *int64           `json:"parent_id"`
}

// merged applies the input over a stored check (or defaults for a new one) and validates the result.
func (in checkInput) merged(base dbsqlc.AppCheck, creating bool) (dbsqlc.AppCheck, fieldErrors) {
	var errs fieldErrors
	stored := base
	if creating {
		base = dbsqlc.AppCheck{IntervalSeconds: 60, TimeoutSeconds: 10, Settings: []byte("{}"), Enabled: true}
		for _, req := range []struct {
			field   string
			present bool
		}{{"name", in.Name != nil}, {"kind", in.Kind != nil}, {"target", in.Target != nil}} {
			if !req.present {
				errs.add(req.field, "is required")
			}
		}
	} else if in.Kind != nil && *in.Kind != base.Kind {
		errs.add("kind", "cannot change; create a new check instead")
	}
	if in.Name != nil {
		base.Name = *in.Name
	}
	if in.Kind != nil && creating {
		base.Kind = *in.Kind
	}
	if in.Target != nil {
		base.Target = *in.Target
	}
	if in.IntervalSeconds != nil {
		base.IntervalSeconds = *in.IntervalSeconds
	}
	if in.TimeoutSeconds != nil {
		base.TimeoutSeconds = *in.TimeoutSeconds
	}
	if in.Location != nil {
		base.Location = in.Location
		if *in.Location == "" {
			base.Location = nil
		}
	}
	if in.HostID != nil {
		base.HostID = in.HostID
		if *in.HostID == 0 {
			base.HostID = nil
		}
	}
	// Secrets: settings left out keep every stored one, the mask keeps one, and neither may follow the
	// check to another target. These refusals are reported along with the validation's.
	var secretErrs fieldErrors
	keptSecrets := slices.Sorted(maps.Keys(storedSecrets(base.Kind, base.Settings)))
	if in.Settings != nil {
		base.Settings, keptSecrets = keepMaskedSecrets(base.Kind, *in.Settings, base.Settings, &secretErrs)
	}
	if !creating {
		secretsFollow(stored, base, keptSecrets, &secretErrs)
	}
	if in.Enabled != nil {
		base.Enabled = *in.Enabled
	}
	if in.ParentID != nil {
		base.ParentID = in.ParentID
		if *in.ParentID == 0 {
			base.ParentID = nil
		}
	}
	if len(errs) > 0 {
		return base, append(errs, secretErrs...)
	}
	if n := len(base.Name); n < 1 || n > 200 {
		errs.add("name", "must be 1 to 200 characters")
	}
	for _, p := range checks.Validate(base.Kind, base.Target, base.Settings) {
		errs.add(p.Field, "%s", p.Message)
	}
	if base.IntervalSeconds < 10 || base.IntervalSeconds > 86400 {
		errs.add("interval_seconds", "must be from 10 to 86400")
	}
	if base.TimeoutSeconds < 1 || base.TimeoutSeconds > 300 || base.TimeoutSeconds > base.IntervalSeconds {
		errs.add("timeout_seconds", "must be from 1 to 300 and at most interval_seconds")
	}
	if base.Location != nil && len(*base.Location) > 64 {
		errs.add("location", "must be at most 64 characters")
	}
	return base, append(errs, secretErrs...)
}

func (s *server) listChecks(c *gin.Context) {
	var params dbsqlc.CheckListParams
	var errs fieldErrors
	if k := c.Query("kind"); k != "" {
		if _, ok := checks.Lookup(k); !ok {
			errs.add("kind", "must be one of %s", strings.Join(checks.Names(), ", "))
		}
		params.Kind = &k
	}
	if h := c.Query("host_id"); h != "" {
		id, err := strconv.ParseInt(h, 10, 64)
		if err != nil || id <= 0 {
			errs.add("host_id", "must be a positive integer")
		}
		params.HostID = &id
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppCheck, error) {
		params.AfterID, params.MaxRows = after, limit
		return q.CheckList(c.Request.Context(), params)
	}, checkOut, func(ch Check) int64 { return ch.ID })
}

func (s *server) createCheck(c *gin.Context) {
	var in checkInput
	if !decodeBody(c, &in) {
		return
	}
	ch, errs := in.merged(dbsqlc.AppCheck{}, true)
	if len(errs) == 0 {
		errs = s.guardTarget(c, ch)
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	// Secrets are sealed; the settings keep the mask in their place.
	public, sealed, err := checks.SealSecrets(s.secrets, principal(c).TenantID, ch.Kind, ch.Settings)
	if err != nil {
		s.internalError(c, err)
		return
	}
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		ctx := c.Request.Context()
		t, err := q.TenantGetCurrent(ctx)
		if err != nil {
			return err
		}
		if n, err := q.CheckCount(ctx); err != nil {
			return err
		} else if n >= int64(t.MaxChecks) {
			return &problemError{status: http.StatusUnprocessableEntity, title: "check limit reached",
				detail: "this tenant may have " + strconv.Itoa(int(t.MaxChecks)) + " checks"}
		}
		if err := hostExists(c, q, ch.HostID); err != nil {
			return err
		}
		if err := parentAcyclic(c, q, 0, ch.ParentID); err != nil {
			return err
		}
		ch, err = q.CheckCreate(ctx, dbsqlc.CheckCreateParams{HostID: ch.HostID, Name: ch.Name, Kind: ch.Kind,
			Target: ch.Target, IntervalSeconds: ch.IntervalSeconds, TimeoutSeconds: ch.TimeoutSeconds,
			Settings: public, Secrets: sealed, Enabled: ch.Enabled, Location: ch.Location, ParentID: ch.ParentID})
		if err != nil {
			return err
		}
		return record(c, q, "check.create", "check", strconv.FormatInt(ch.ID, 10), gin.H{"name": ch.Name, "kind": ch.Kind})
	}) {
		return
	}
	c.JSON(http.StatusCreated, checkOut(ch))
}

// hostExists refuses a host id the tenant does not have, naming the field.
func hostExists(c *gin.Context, q *dbsqlc.Queries, hostID *int64) error {
	if hostID == nil {
		return nil
	}
	if _, err := q.HostGetByID(c.Request.Context(), *hostID); err != nil {
		return &problemError{status: http.StatusBadRequest, title: "invalid request", detail: "one or more fields are invalid; see errors",
			fields: fieldErrors{{Field: "host_id", Message: "no such host"}}}
	}
	return nil
}

// maxParentDepth bounds the walk up a chain of parents.
const maxParentDepth = 100

// parentAcyclic refuses a parent that is not a check of the tenant, or that depends on check id (0 for
// a new check): a check cannot depend on itself, however far up.
func parentAcyclic(c *gin.Context, q *dbsqlc.Queries, id int64, parent *int64) error {
	bad := func(msg string) error {
		return &problemError{status: http.StatusBadRequest, title: "invalid request", detail: "one or more fields are invalid; see errors",
			fields: fieldErrors{{Field: "parent_id", Message: msg}}}
	}
	for depth, next := 0, parent; next != nil; depth++ {
		if *next == id || depth > maxParentDepth {
			return bad("would make the check depend on itself")
		}
		p, err := q.CheckGetByID(c.Request.Context(), *next)
		if errors.Is(err, db.ErrNotFound) {
			return bad("no such check")
		} else if err != nil {
			return err
		}
		next = p.ParentID
	}
	return nil
}

func (s *server) getCheck(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var ch dbsqlc.AppCheck
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) { ch, err = q.CheckGetByID(c.Request.Context(), id); return err }) {
		c.JSON(http.StatusOK, checkOut(ch))
	}
}

func (s *server) updateCheck(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in checkInput
	if !decodeBody(c, &in) {
		return
	}
	var ch dbsqlc.AppCheck
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.CheckGetByID(ctx, id)
		if err != nil {
			return err
		}
		if stored.Settings, err = checks.OpenSecrets(s.secrets, stored.TenantID, stored.Settings, stored.Secrets,
			stored.SecretsStaging); err != nil {
			return err
		}
		merged, errs := in.merged(stored, false)
		if len(errs) > 0 {
			return &problemError{status: http.StatusBadRequest, title: "invalid request",
				detail: "one or more fields are invalid; see errors", fields: errs}
		}
		if errs := s.guardTarget(c, merged); len(errs) > 0 {
			return &problemError{status: http.StatusBadRequest, title: "invalid request",
				detail: "one or more fields are invalid; see errors", fields: errs}
		}
		if err := hostExists(c, q, merged.HostID); err != nil {
			return err
		}
		if err := parentAcyclic(c, q, id, merged.ParentID); err != nil {
			return err
		}
		public, sealed, err := checks.SealSecrets(s.secrets, stored.TenantID, merged.Kind, merged.Settings)
		if err != nil {
			return err
		}
		ch, err = q.CheckUpdate(ctx, dbsqlc.CheckUpdateParams{ID: id, HostID: merged.HostID, Name: merged.Name,
			Target: merged.Target, IntervalSeconds: merged.IntervalSeconds, TimeoutSeconds: merged.TimeoutSeconds,
			Settings: public, Secrets: sealed, Enabled: merged.Enabled, Location: merged.Location, ParentID: merged.ParentID})
		if err != nil {
			return err
		}
		return record(c, q, "check.update", "check", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, checkOut(ch))
}

func (s *server) deleteCheck(c *gin.Context) {
	s.removeByID(c, "check.delete", "check", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.CheckDelete(c.Request.Context(), id))
	})
}

// guardTarget refuses, in SaaS mode, a target (or DNS server) that resolves to an address the poller
// must not reach; probes check again on every connection.
func (s *server) guardTarget(c *gin.Context, ch dbsqlc.AppCheck) fieldErrors {
	var errs fieldErrors
	for _, p := range s.guard.CheckEndpoints(c.Request.Context(), ch.Kind, ch.Target, ch.Settings) {
		errs.add(p.Field, "%s", p.Message)
	}
	return errs
}

// CheckResult is one stored run of a check.
type CheckResult struct {
	Time      time.Time       `json:"time"`
	Status    string          `json:"status"`
	LatencyMS *float64        `json:"latency_ms"`
	Detail    json.RawMessage `json:"detail"`
}

// listCheckResults is GET /api/v1/checks/{id}/results?limit=&cursor=: newest first.
func (s *server) listCheckResults(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	before := time.Now().Add(time.Hour) // results are never stamped in the future; an hour is slack for clocks
	if cursor != "" {
		ns, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			writeValidation(c, fieldErrors{{Field: "cursor", Message: "is not a cursor this API returned"}})
			return
		}
		before = time.Unix(0, ns)
	}
	var out []CheckResult
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		if _, err := q.CheckGetByID(ctx, id); err != nil {
			return err
		}
		rows, err := q.CheckResultList(ctx, dbsqlc.CheckResultListParams{CheckID: id, Before: before, MaxRows: limit})
		for _, r := range rows {
			res := CheckResult{Time: r.Time, Status: r.Status, Detail: r.Detail}
			if r.Latency != nil {
				ms := float64(*r.Latency) / float64(time.Millisecond)
				res.LatencyMS = &ms
			}
			out = append(out, res)
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(out), limit, func(r CheckResult) string { return strconv.FormatInt(r.Time.UnixNano(), 10) }))
}

// runCheck is POST /api/v1/checks/{id}/run: it runs the check now, stores the result like a scheduled
// run's (without moving the schedule) and answers it.
func (s *server) runCheck(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if s.checks == nil {
		writeProblem(c, http.StatusServiceUnavailable, "checks cannot be run by this process", "")
		return
	}
	run, err := s.checks.RunNowForTenant(c.Request.Context(), principal(c).TenantID, id)
	var tooSoon *checks.TooSoonError
	if errors.As(err, &tooSoon) {
		c.Header("Retry-After", strconv.Itoa(int(tooSoon.RetryAfter/time.Second)+1))
		writeProblem(c, http.StatusTooManyRequests, "check ran moments ago", tooSoon.Error())
		return
	} else if err != nil {
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusOK, run)
}

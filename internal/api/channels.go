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

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// ChannelTester sends a channel's test message on a user's request (POST /channels/{id}/test); the
// notify package's Tester is the one the process wires.
type ChannelTester interface {
	// TestChannel sends channel id of tenant a test message now and answers what the provider said:
	// db.ErrNotFound when the tenant has no such channel, a *notify.TooSoonError when it tested too often.
	TestChannel(ctx context.Context, tenant uuid.UUID, id int64) (notify.TestResult, error)
}

var (
	lookupChannel = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.ChannelGetByID(c.Request.Context(), id)
		return err
	})
	lookupNotification = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.NotificationGetByID(c.Request.Context(), id)
		return err
	})
)

// Channel is a notification channel as the API shows it; secret settings are masked.
type Channel struct {
	ID                   int64           `json:"id"`
	Name                 string          `json:"name"`
	Kind                 string          `json:"kind"`
	Settings             json.RawMessage `json:"settings"`
	Enabled              bool            `json:"enabled"`
	GroupWaitSeconds     int32           `json:"group_wait_seconds"`
	GroupIntervalSeconds int32           `json:"group_interval_seconds"`
	CreatedBy            *uuid.UUID      `json:"created_by"`
	CreatedAt            time.Time       `json:"created_at"`
	UpdatedAt            time.Time       `json:"updated_at"`
}

// CreatedChannel adds the signing secret a webhook channel was given, shown this once.
type CreatedChannel struct {
	Channel
	SigningSecret string `json:"signing_secret,omitempty"`
}

// channelOut shows a stored channel: its settings are stored with the mask where each secret is, and
// masked once more in case one was not.
func channelOut(ch dbsqlc.AppChannel) Channel {
	return Channel{ID: ch.ID, Name: ch.Name, Kind: ch.Kind, Settings: maskChannelSecrets(ch.Kind, ch.Settings), Enabled: ch.Enabled,
		GroupWaitSeconds: ch.GroupWaitSeconds, GroupIntervalSeconds: ch.GroupIntervalSeconds, CreatedBy: ch.CreatedBy,
		CreatedAt: ch.CreatedAt, UpdatedAt: ch.UpdatedAt}
}

// channelSecretFields are the secret settings of a kind; a kind that does not exist has none.
func channelSecretFields(kind string) secrets.Fields {
	if k, ok := notify.Lookup(kind); ok {
		return k.Secrets()
	}
	return secrets.Fields{}
}

func maskChannelSecrets(kind string, settings []byte) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(settings, &m) != nil {
		return json.RawMessage("{}")
	}
	eachSecretField(channelSecretFields(kind), m, func(_ string, v json.RawMessage) json.RawMessage {
		if emptyText(v) {
			return v
		}
		return json.RawMessage(strconv.Quote(secretMask))
	})
	out, _ := json.Marshal(m)
	return out
}

// channelInput is the body of POST and PATCH /channels; absent fields keep their value on PATCH.
type channelInput struct {
	Name                 *string          `json:"name"`
	Kind                 *string          `json:"kind"`
	Settings             *json.RawMessage `json:"settings"`
	Enabled              *bool            `json:"enabled"`
	GroupWaitSeconds     *int32           `json:"group_wait_seconds"`
	GroupIntervalSeconds *int32           `json:"group_interval_seconds"`
}

// Bounds of the grouping settings (app.channels' CHECKs).
const (
	maxGroupWaitSeconds     = 3600
	maxGroupIntervalSeconds = 86400
)

// merged applies the input over a stored channel (its secrets opened into its settings) or, creating,
// over the defaults, and validates the result. Secrets follow the rules of checks: settings left out
// keep every stored secret, the mask keeps one, and none may follow the channel to another destination.
func (in channelInput) merged(stored dbsqlc.AppChannel, creating bool) (dbsqlc.AppChannel, fieldErrors) {
	var errs fieldErrors
	base := stored
	if creating {
		base = dbsqlc.AppChannel{Settings: []byte("{}"), Enabled: true, GroupWaitSeconds: 30, GroupIntervalSeconds: 300}
		if in.Name == nil {
			errs.add("name", "is required")
		}
		if in.Kind == nil {
			errs.add("kind", "is required")
		}
		if in.Settings == nil {
			errs.add("settings", "is required")
		}
	} else if in.Kind != nil && *in.Kind != base.Kind {
		errs.add("kind", "cannot change; create a new channel instead")
	}
	if in.Name != nil {
		base.Name = *in.Name
	}
	if in.Kind != nil && creating {
		base.Kind = *in.Kind
	}
	if in.Enabled != nil {
		base.Enabled = *in.Enabled
	}
	if in.GroupWaitSeconds != nil {
		base.GroupWaitSeconds = *in.GroupWaitSeconds
	}
	if in.GroupIntervalSeconds != nil {
		base.GroupIntervalSeconds = *in.GroupIntervalSeconds
	}
	if len(errs) > 0 {
		return base, errs
	}
	fields := channelSecretFields(base.Kind)
	var secretErrs fieldErrors
	kept := slices.Sorted(maps.Keys(storedSecretFields(fields, base.Settings)))
	if in.Settings != nil {
		base.Settings, kept = keepMaskedFields(fields, *in.Settings, base.Settings, &secretErrs)
	}
	if !creating {
		if k, ok := notify.Lookup(base.Kind); ok && len(kept) > 0 &&
			k.Destination(stored.Settings) != k.Destination(base.Settings) {
			for _, field := range kept {
				secretErrs.add(field, "the destination changed; send the secret again")
			}
		}
	}
	if n := len(base.Name); n < 1 || n > 200 {
		errs.add("name", "must be 1 to 200 characters")
	}
	if base.GroupWaitSeconds < 0 || base.GroupWaitSeconds > maxGroupWaitSeconds {
		errs.add("group_wait_seconds", "must be from 0 to %d", maxGroupWaitSeconds)
	}
	if base.GroupIntervalSeconds < 0 || base.GroupIntervalSeconds > maxGroupIntervalSeconds {
		errs.add("group_interval_seconds", "must be from 0 to %d", maxGroupIntervalSeconds)
	}
	for _, p := range notify.Validate(base.Kind, base.Settings) {
		errs.add(p.Field, "%s", p.Message)
	}
	return base, append(errs, secretErrs...)
}

// eachSecretField calls fn with every secret of a settings object — the settings fields says are secret,
// and every value of those that are maps of secrets — named as the API names fields, and puts back
// what fn returns.
func eachSecretField(fields secrets.Fields, settings map[string]json.RawMessage, fn func(field string, value json.RawMessage) json.RawMessage) {
	for _, name := range fields.Settings {
		if v, ok := settings[name]; ok {
			settings[name] = fn("settings."+name, v)
		}
	}
	for _, name := range fields.Maps {
		raw, ok := settings[name]
		if !ok {
			continue
		}
		var values map[string]json.RawMessage
		if json.Unmarshal(raw, &values) != nil {
			settings[name] = fn("settings."+name, raw)
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(values)) {
			values[key] = fn("settings."+name+"."+key, values[key])
		}
		settings[name], _ = json.Marshal(values)
	}
}

func storedSecretFields(fields secrets.Fields, settings []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	var m map[string]json.RawMessage
	if json.Unmarshal(settings, &m) == nil {
		eachSecretField(fields, m, func(field string, v json.RawMessage) json.RawMessage {
			if !emptyText(v) {
				out[field] = v
			}
			return v
		})
	}
	return out
}

// keepMaskedFields puts stored secrets back where incoming settings sent the mask, and returns the
// settings with the fields kept that way. A mask where nothing is stored is refused.
func keepMaskedFields(fields secrets.Fields, incoming, stored []byte, errs *fieldErrors) ([]byte, []string) {
	var in map[string]json.RawMessage
	if json.Unmarshal(incoming, &in) != nil || in == nil {
		return incoming, nil // not an object: validation names it
	}
	old := storedSecretFields(fields, stored)
	var kept []string
	eachSecretField(fields, in, func(field string, v json.RawMessage) json.RawMessage {
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

// sealChannel splits a channel's settings into what is stored in the clear and its sealed secrets.
func (s *server) sealChannel(tenant uuid.UUID, kind string, settings []byte) (public, sealed []byte, err error) {
	public, plain, err := secrets.Split(settings, channelSecretFields(kind))
	if err != nil || plain == nil {
		return public, nil, err
	}
	sealed, err = s.secrets.Seal(plain, secrets.For(notify.SecretsColumn, tenant))
	return public, sealed, err
}

// openChannel puts a stored channel's secrets back into its settings.
func (s *server) openChannel(ch dbsqlc.AppChannel) (dbsqlc.AppChannel, error) {
	if len(ch.Secrets) == 0 {
		return ch, nil
	}
	plain, err := s.secrets.Open(ch.Secrets, secrets.For(notify.SecretsColumn, ch.TenantID))
	if err != nil {
		return ch, err
	}
	ch.Settings, err = secrets.Join(ch.Settings, plain)
	return ch, err
}

// guardChannel refuses, in SaaS mode, a URL of the channel whose host resolves to an address the
// deployment must not reach; every connection is checked again when it is made.
func (s *server) guardChannel(c *gin.Context, ch dbsqlc.AppChannel) fieldErrors {
	var errs fieldErrors
	k, ok := notify.Lookup(ch.Kind)
	if !ok || s.guard.AllowPrivate {
		return nil
	}
	for _, e := range k.Endpoints(ch.Settings) {
		host := hostOf(e.URL)
		if host == "" {
			continue
		}
		if _, err := s.guard.Resolve(c.Request.Context(), host); err != nil {
			errs.add(e.Field, "is not allowed: %v", err)
		}
	}
	return errs
}

func hostOf(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		raw = raw[i+3:]
	}
	if i := strings.IndexAny(raw, "/?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		raw = raw[i+1:]
	}
	if strings.HasPrefix(raw, "[") {
		if i := strings.Index(raw, "]"); i > 0 {
			return raw[1:i]
		}
	}
	if i := strings.LastIndex(raw, ":"); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

func (s *server) listChannels(c *gin.Context) {
	var params dbsqlc.ChannelListParams
	if k := c.Query("kind"); k != "" {
		if _, ok := notify.Lookup(k); !ok {
			writeValidation(c, fieldErrors{{Field: "kind", Message: "must be one of " + strings.Join(notify.Names(), ", ")}})
			return
		}
		params.Kind = &k
	}
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppChannel, error) {
		params.AfterID, params.MaxRows = after, limit
		return q.ChannelList(c.Request.Context(), params)
	}, channelOut, func(ch Channel) int64 { return ch.ID })
}

func (s *server) getChannel(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var ch dbsqlc.AppChannel
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) { ch, err = q.ChannelGetByID(c.Request.Context(), id); return err }) {
		c.JSON(http.StatusOK, channelOut(ch))
	}
}

func (s *server) createChannel(c *gin.Context) {
	var in channelInput
	if !decodeBody(c, &in) {
		return
	}
	// A webhook channel created without a signing secret gets one, answered this once.
	var generated string
	if in.Kind != nil && *in.Kind == "webhook" && in.Settings != nil {
		var m map[string]json.RawMessage
		if json.Unmarshal(*in.Settings, &m) == nil && m != nil {
			if _, has := m["secret"]; !has {
				secret, err := auth.RandomSecret(32)
				if err != nil {
					s.internalError(c, err)
					return
				}
				generated = "whsec_" + secret
				m["secret"], _ = json.Marshal(generated)
				raw, _ := json.Marshal(m)
				in.Settings = (*json.RawMessage)(&raw)
			}
		}
	}
	ch, errs := in.merged(dbsqlc.AppChannel{}, true)
	if len(errs) == 0 {
		errs = s.guardChannel(c, ch)
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	tenant := principal(c).TenantID
	public, sealed, err := s.sealChannel(tenant, ch.Kind, ch.Settings)
	if err != nil {
		s.internalError(c, err)
		return
	}
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		ch, err = q.ChannelCreate(c.Request.Context(), dbsqlc.ChannelCreateParams{Name: ch.Name, Kind: ch.Kind, Settings: public,
			Secrets: sealed, Enabled: ch.Enabled, GroupWaitSeconds: ch.GroupWaitSeconds,
			GroupIntervalSeconds: ch.GroupIntervalSeconds, CreatedBy: principal(c).CreatedBy()})
		if err != nil {
			return err
		}
		return record(c, q, "channel.create", "channel", strconv.FormatInt(ch.ID, 10), gin.H{"name": ch.Name, "kind": ch.Kind})
	}) {
		return
	}
	c.JSON(http.StatusCreated, CreatedChannel{Channel: channelOut(ch), SigningSecret: generated})
}

func (s *server) updateChannel(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var in channelInput
	if !decodeBody(c, &in) {
		return
	}
	tenant := principal(c).TenantID
	var ch dbsqlc.AppChannel
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		stored, err := q.ChannelGetByID(ctx, id)
		if err != nil {
			return err
		}
		if stored, err = s.openChannel(stored); err != nil {
			return err
		}
		merged, errs := in.merged(stored, false)
		if len(errs) == 0 {
			errs = s.guardChannel(c, merged)
		}
		if len(errs) > 0 {
			return &problemError{status: http.StatusBadRequest, title: "invalid request",
				detail: "one or more fields are invalid; see errors", fields: errs}
		}
		public, sealed, err := s.sealChannel(tenant, merged.Kind, merged.Settings)
		if err != nil {
			return err
		}
		ch, err = q.ChannelUpdate(ctx, dbsqlc.ChannelUpdateParams{ID: id, Name: merged.Name, Settings: public, Secrets: sealed,
			Enabled: merged.Enabled, GroupWaitSeconds: merged.GroupWaitSeconds, GroupIntervalSeconds: merged.GroupIntervalSeconds})
		if err != nil {
			return err
		}
		return record(c, q, "channel.update", "channel", strconv.FormatInt(id, 10), nil)
	}) {
		return
	}
	c.JSON(http.StatusOK, channelOut(ch))
}

func (s *server) deleteChannel(c *gin.Context) {
	s.removeByID(c, "channel.delete", "channel", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.ChannelDelete(c.Request.Context(), id))
	})
}

// testChannel is POST /api/v1/channels/{id}/test: it sends a test message now and answers the
// provider's status and words, sent or failed alike (a 200: the request itself succeeded).
func (s *server) testChannel(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if s.channels == nil {
		writeProblem(c, http.StatusServiceUnavailable, "channels cannot be tested by this process", "")
		return
	}
	res, err := s.channels.TestChannel(c.Request.Context(), principal(c).TenantID, id)
	var tooSoon *notify.TooSoonError
	if errors.As(err, &tooSoon) {
		c.Header("Retry-After", strconv.Itoa(int(tooSoon.RetryAfter/time.Second)+1))
		writeProblem(c, http.StatusTooManyRequests, "too many test messages", tooSoon.Error())
		return
	} else if err != nil {
		s.answerError(c, err)
		return
	}
	if err := s.tenants.WithTenant(c.Request.Context(), principal(c).TenantID, func(q *dbsqlc.Queries) error {
		return record(c, q, "channel.test", "channel", strconv.FormatInt(id, 10), gin.H{"status": res.Status})
	}); err != nil {
		s.log.Warn("audit a test message", "channel", id, "err", err)
	}
	c.JSON(http.StatusOK, res)
}

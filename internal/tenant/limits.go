package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Limits are a tenant's quotas, as the operator sets them (PATCH /api/v1/operator/tenants/{id}/limits,
// `infrawatch tenant limits --set`) and the tenant reads them (GET /api/v1/tenant). The JSON names are
// the names both take.
//
// Where each is enforced, and how fast a change applies:
//   - max_series, max_labels_per_series, max_label_name_length, max_label_value_length, ingest_rate,
//     ingest_burst: by ingest, which reads a tenant's limits again after 30 s (at once in the process that
//     served the operator's change). ingest_rate and ingest_burst are a token bucket per process.
//   - max_checks: when a check is created, from the database, so at once everywhere.
//   - max_streams, max_heavy_reads: per process, like the server's caps they replace (the stream hub's
//     100 streams per tenant, --heavy-reads-per-tenant); read with the credential at every request, so at
//     the next request everywhere. Null: the server's cap.
type Limits struct {
	MaxSeries           int32  `json:"max_series"`
	MaxLabelsPerSeries  int32  `json:"max_labels_per_series"`
	MaxLabelNameLength  int32  `json:"max_label_name_length"`
	MaxLabelValueLength int32  `json:"max_label_value_length"`
	IngestRate          int32  `json:"ingest_rate"`
	IngestBurst         int32  `json:"ingest_burst"`
	MaxChecks           int32  `json:"max_checks"`
	MaxStreams          *int32 `json:"max_streams"`
	MaxHeavyReads       *int32 `json:"max_heavy_reads"`
}

// LimitsOf reads the limits of a tenant's row.
func LimitsOf(t dbsqlc.AppTenant) Limits {
	return Limits{MaxSeries: t.MaxSeries, MaxLabelsPerSeries: t.MaxLabelsPerSeries, MaxLabelNameLength: t.MaxLabelNameLength,
		MaxLabelValueLength: t.MaxLabelValueLength, IngestRate: t.IngestRate, IngestBurst: t.IngestBurst, MaxChecks: t.MaxChecks,
		MaxStreams: t.MaxStreams, MaxHeavyReads: t.MaxHeavyReads}
}

// LimitSpec is one settable limit: its name (the JSON field), its range, whether null (the server's
// value) is allowed, and what it bounds.
type LimitSpec struct {
	Name     string
	Min, Max int32
	Nullable bool
	What     string
}

// LimitSpecs are the settable limits, in the order of Limits. The maxima are what the storage and the
// server can take: a label value longer than 2048 bytes, or a name longer than 1024, may not fit the
// series' identity index; app.tenants' CHECKs hold the minima (and the ranges of the nullable ones).
var LimitSpecs = []LimitSpec{
	{Name: "max_series", Min: 1, Max: 100_000_000, What: "series the tenant may have"},
	{Name: "max_labels_per_series", Min: 1, Max: 100, What: "labels of one series"},
	{Name: "max_label_name_length", Min: 1, Max: 1024, What: "bytes of a label name"},
	{Name: "max_label_value_length", Min: 1, Max: 2048, What: "bytes of a label value"},
	{Name: "ingest_rate", Min: 1, Max: 10_000_000, What: "samples per second accepted, per ingest process"},
	{Name: "ingest_burst", Min: 1, Max: 100_000_000, What: "samples accepted at once (and the largest push), per ingest process"},
	{Name: "max_checks", Min: 0, Max: 1_000_000, What: "checks the tenant may have"},
	{Name: "max_streams", Min: 1, Max: 10_000, Nullable: true, What: "live streams open at once, per API process (null: the server's cap)"},
	{Name: "max_heavy_reads", Min: 1, Max: 1000, Nullable: true,
		What: "heavy reads running at once, per API process (null: --heavy-reads-per-tenant)"},
}

func limitSpec(name string) (LimitSpec, bool) {
	for _, s := range LimitSpecs {
		if s.Name == name {
			return s, true
		}
	}
	return LimitSpec{}, false
}

// FieldError says why the value of one limit is refused.
type FieldError struct {
	Field   string
	Message string
}

// LimitsChange is a partial update of a tenant's limits: the limits it names are set, the others kept.
// A nil value (null) sets a nullable limit back to the server's value.
type LimitsChange map[string]*int32

// ParseLimitsJSON reads a JSON object of limits (PATCH's body, as decoded into its fields) and refuses,
// each by name, unknown fields, values that are not whole numbers in range, and null where the limit
// must have a value.
func ParseLimitsJSON(fields map[string]json.RawMessage) (LimitsChange, []FieldError) {
	change := LimitsChange{}
	var errs []FieldError
	for _, name := range sortedKeys(fields) {
		raw := bytes.TrimSpace(fields[name])
		spec, ok := limitSpec(name)
		if !ok {
			errs = append(errs, FieldError{name, "unknown limit; the limits are " + limitNames()})
			continue
		}
		if string(raw) == "null" {
			if !spec.Nullable {
				errs = append(errs, FieldError{name, "must be a whole number " + spec.rangeText() + ", not null"})
				continue
			}
			change[name] = nil
			continue
		}
		var num json.Number // a JSON number: encoding/json would take "64", a string, too
		if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &num) != nil {
			errs = append(errs, FieldError{name, "must be a whole number " + spec.rangeText() + spec.nullText()})
			continue
		}
		v, err := spec.parse(num.String())
		if err != nil {
			errs = append(errs, FieldError{name, err.Error()})
			continue
		}
		change[name] = &v
	}
	return change, errs
}

// ParseLimitsSet reads the command line's key=value pairs (`--set ingest_rate=5000`); "null" sets a
// nullable limit back to the server's value. The names and ranges are the API's.
func ParseLimitsSet(pairs []string) (LimitsChange, []FieldError) {
	change := LimitsChange{}
	var errs []FieldError
	for _, pair := range pairs {
		name, value, ok := strings.Cut(pair, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		spec, known := limitSpec(name)
		switch {
		case !ok:
			errs = append(errs, FieldError{pair, "must be key=value, such as ingest_rate=5000"})
			continue
		case !known:
			errs = append(errs, FieldError{name, "unknown limit; the limits are " + limitNames()})
			continue
		case value == "null":
			if !spec.Nullable {
				errs = append(errs, FieldError{name, "must be a whole number " + spec.rangeText() + ", not null"})
				continue
			}
			change[name] = nil
			continue
		}
		v, err := spec.parse(value)
		if err != nil {
			errs = append(errs, FieldError{name, err.Error()})
			continue
		}
		change[name] = &v
	}
	return change, errs
}

func (s LimitSpec) rangeText() string {
	return fmt.Sprintf("from %s to %s", group(s.Min), group(s.Max))
}

func (s LimitSpec) nullText() string {
	if s.Nullable {
		return ", or null for the server's value"
	}
	return ""
}

// parse reads a whole number in the limit's range.
func (s LimitSpec) parse(text string) (int32, error) {
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be a whole number %s%s, not %.40q", s.rangeText(), s.nullText(), text)
	}
	if v < int64(s.Min) || v > int64(s.Max) {
		return 0, fmt.Errorf("must be %s%s, not %d", s.rangeText(), s.nullText(), v)
	}
	return int32(v), nil
}

// group writes n with thousands separators: 100,000,000.
func group(n int32) string {
	s := strconv.Itoa(int(n))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func limitNames() string {
	names := make([]string, 0, len(LimitSpecs))
	for _, s := range LimitSpecs {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// params turns the change into the update of tenant id.
func (ch LimitsChange) params(id uuid.UUID) dbsqlc.TenantSetLimitsParams {
	p := dbsqlc.TenantSetLimitsParams{ID: id, MaxSeries: ch["max_series"], MaxLabelsPerSeries: ch["max_labels_per_series"],
		MaxLabelNameLength: ch["max_label_name_length"], MaxLabelValueLength: ch["max_label_value_length"],
		IngestRate: ch["ingest_rate"], IngestBurst: ch["ingest_burst"], MaxChecks: ch["max_checks"]}
	p.MaxStreams, p.SetMaxStreams = ch["max_streams"]
	p.MaxHeavyReads, p.SetMaxHeavyReads = ch["max_heavy_reads"]
	return p
}

// Actor says who changes limits, for the tenant's audit log.
type Actor struct {
	Kind string // operator (the operator API) or system (the command line)
	ID   string
}

var (
	// ActorOperator is the platform operator on the operator API (one shared token, no identity).
	ActorOperator = Actor{Kind: "operator", ID: "operator-token"}
	// ActorCommandLine is `infrawatch tenant limits` (system work through the database).
	ActorCommandLine = Actor{Kind: "system", ID: "infrawatch tenant limits"}
)

// SetLimits changes tenant id's limits and records the change, by actor, in the tenant's audit log, in one
// transaction; it returns the tenant as it is then. db.ErrNotFound: no such tenant.
func SetLimits(ctx context.Context, sys *db.System, id uuid.UUID, change LimitsChange, actor Actor) (dbsqlc.AppTenant, error) {
	var t dbsqlc.AppTenant
	err := sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		var err error
		if t, err = q.TenantSetLimits(ctx, change.params(id)); err != nil {
			return fmt.Errorf("set limits of tenant %s: %w", id, err)
		}
		details, err := json.Marshal(change)
		if err != nil {
			return err
		}
		if err := q.AuditLogInsert(ctx, dbsqlc.AuditLogInsertParams{TenantID: id, ActorKind: actor.Kind, ActorID: actor.ID,
			Action: "tenant.limits", ObjectKind: "tenant", ObjectID: id.String(), Details: details}); err != nil {
			return fmt.Errorf("audit the limits of tenant %s: %w", id, err)
		}
		return nil
	})
	return t, err
}

// Usage is what a tenant uses now of its limits.
type Usage struct {
	// Series is the exact number of the tenant's series (app.series_counts).
	Series int64 `json:"series"`
	// Checks is the number of its checks, disabled ones included (max_checks counts them too).
	Checks int64 `json:"checks"`
	// SamplesLastMinute is the samples stored for it, across all ingest processes, in the last complete
	// minute (starting at Minute, by the database's clock); SamplesPerSecond is that over 60 s.
	SamplesLastMinute int64     `json:"samples_last_minute"`
	SamplesPerSecond  float64   `json:"samples_per_second"`
	Minute            time.Time `json:"minute"`
	// SamplesThisMinute is the samples stored so far in the current minute.
	SamplesThisMinute int64 `json:"samples_this_minute"`
}

// ReadUsage reads tenant id's usage with q: system work, or the tenant's own runner (row-level security
// then shows only its rows, and id must be its own).
func ReadUsage(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID) (Usage, error) {
	r, err := q.TenantUsageGet(ctx, id)
	if err != nil {
		return Usage{}, fmt.Errorf("read the usage of tenant %s: %w", id, err)
	}
	return Usage{Series: r.Series, Checks: r.Checks, SamplesLastMinute: r.SamplesLastMinute,
		SamplesPerSecond: float64(r.SamplesLastMinute) / 60, Minute: r.LastMinute.UTC(), SamplesThisMinute: r.SamplesThisMinute}, nil
}

// LimitsReport is a tenant's limits and usage, as the operator sees them.
type LimitsReport struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Slug     string    `json:"slug"`
	Name     string    `json:"name"`
	Limits   Limits    `json:"limits"`
	Usage    Usage     `json:"usage"`
}

// Report reads tenant t's usage and pairs it with its limits.
func Report(ctx context.Context, sys *db.System, t dbsqlc.AppTenant) (LimitsReport, error) {
	u, err := ReadUsage(ctx, sys.Queries(), t.ID)
	if err != nil {
		return LimitsReport{}, err
	}
	return LimitsReport{TenantID: t.ID, Slug: t.Slug, Name: t.Name, Limits: LimitsOf(t), Usage: u}, nil
}

// Get returns tenant id; db.ErrNotFound when there is none.
func (o *Operator) Get(ctx context.Context, id uuid.UUID) (dbsqlc.AppTenant, error) {
	t, err := o.sys.Queries().TenantGetByID(ctx, id)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		err = fmt.Errorf("read tenant %s: %w", id, err)
	}
	return t, err
}

// Usage reads tenant id's usage.
func (o *Operator) Usage(ctx context.Context, id uuid.UUID) (Usage, error) {
	return ReadUsage(ctx, o.sys.Queries(), id)
}

// SetLimits changes a tenant's limits for the operator; see SetLimits.
func (o *Operator) SetLimits(ctx context.Context, id uuid.UUID, change LimitsChange) (dbsqlc.AppTenant, error) {
	return SetLimits(ctx, o.sys, id, change, ActorOperator)
}

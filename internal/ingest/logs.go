package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// LogPush is the body of POST /api/v1/logs.
type LogPush struct {
	Host    *JSONHost  `json:"host"`
	Entries []LogEntry `json:"entries"`
}

// LogEntry is one log line.
type LogEntry struct {
	Time       int64          `json:"time"` // milliseconds since the Unix epoch
	Source     string         `json:"source"`
	Severity   string         `json:"severity"`
	Message    string         `json:"message"`
	Attributes map[string]any `json:"attributes"`
}

// DecodeLogPush decodes the body of POST /api/v1/logs as DecodeJSONPush does ours: a JSON object with no
// field it does not know and nothing after it, in UTF-8 (the API checks that first).
func DecodeLogPush(body []byte) (LogPush, error) {
	var push LogPush
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&push); err != nil {
		return push, fmt.Errorf("malformed logs body: %w", err)
	}
	if dec.More() {
		return push, fmt.Errorf("malformed logs body: data after the JSON object")
	}
	return push, nil
}

// Severities are the stored severities, syslog's, least severe first.
var Severities = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// severityAliases maps what agents commonly send to a stored severity.
var severityAliases = map[string]string{
	"": "info", "trace": "debug", "debug": "debug", "info": "info", "information": "info", "notice": "notice",
	"warn": "warning", "warning": "warning", "err": "error", "error": "error", "crit": "critical", "critical": "critical",
	"fatal": "critical", "alert": "alert", "emerg": "emergency", "emergency": "emergency", "panic": "emergency",
}

// Limits of one log line; its attributes are bounded by LogAttributeLimits.
const (
	MaxLogMessageBytes = 32 << 10
	MaxLogSourceBytes  = 256
)

// WriteLogs validates a log push and writes its valid lines for tenant in one COPY. An entry that cannot
// be stored is refused alone, with a reason that names it; a host that cannot is an *InvalidError.
func (s *Service) WriteLogs(ctx context.Context, tenant uuid.UUID, push LogPush) (Result, error) {
	if push.Host != nil {
		if err := push.Host.Validate(); err != nil {
			return Result{}, err
		}
	}
	return s.WriteLogGroups(ctx, tenant, "logs", []LogPush{push})
}

// WriteLogGroups writes the lines of several hosts of tenant in one COPY: each group's lines belong to
// its host (none when Host is nil), whose name the caller has checked (CheckHostName). An entry that
// cannot be stored is refused alone; its Rejection counts entries across the groups, in order.
// protocol names the metric's label (logs, otlp, snmptrap).
func (s *Service) WriteLogGroups(ctx context.Context, tenant uuid.UUID, protocol string, groups []LogPush) (Result, error) {
	var res Result
	now := s.now()
	oldest, newest := now.Add(-s.cfg.RawRetention).UnixMilli(), now.Add(s.cfg.MaxFuture).UnixMilli()
	tid := pgtype.UUID{Bytes: tenant, Valid: true}
	var hosts []logHost
	var lines [][]any
	index := 0
	for _, g := range groups {
		var hostID *int64 // every line of a group with a host refers to it; copyLogs sets it
		if g.Host != nil {
			hostID = new(int64)
		}
		stored := 0
		for _, e := range g.Entries {
			i := index
			index++
			severity, why := checkLogEntry(e, oldest, newest, s.cfg.MaxFuture)
			if why != "" {
				s.reject(&res, i, -1, "log_invalid", "entry %d: %s", i, why)
				continue
			}
			attrs := []byte("{}")
			if e.Attributes != nil {
				attrs, _ = json.Marshal(e.Attributes)
			}
			lines = append(lines, []any{time.UnixMilli(e.Time), tid, hostID, e.Source, severity, e.Message, attrs})
			stored++
		}
		if g.Host != nil && stored > 0 {
			hosts = append(hosts, logHost{host: g.Host, id: hostID})
		}
	}
	if len(lines) == 0 {
		return res, nil
	}
	if err := s.copyLogs(ctx, tenant, hosts, lines); err != nil {
		return res, err
	}
	res.Accepted = len(lines)
	s.m.accepted.WithLabelValues(protocol).Add(float64(len(lines)))
	return res, nil
}

// logHost is a host of a log write and where its id goes: the lines of the host hold the pointer.
type logHost struct {
	host *JSONHost
	id   *int64
}

// checkLogEntry returns the stored severity of a log line, or why it cannot be stored.
func checkLogEntry(e LogEntry, oldest, newest int64, maxFuture time.Duration) (severity, why string) {
	severity, known := severityAliases[strings.ToLower(e.Severity)]
	switch {
	case e.Time < oldest || e.Time > newest:
		return "", fmt.Sprintf("time %d is outside the accepted window (raw retention back, %s ahead)", e.Time, maxFuture)
	case !known:
		return "", fmt.Sprintf("severity %.20q is not one of %s", e.Severity, strings.Join(Severities, ", "))
	case e.Message == "" || len(e.Message) > MaxLogMessageBytes:
		return "", fmt.Sprintf("message must be 1 to %d bytes", MaxLogMessageBytes)
	case CheckText(e.Message) != "":
		return "", "message " + CheckText(e.Message)
	case len(e.Source) > MaxLogSourceBytes:
		return "", fmt.Sprintf("source must be at most %d bytes", MaxLogSourceBytes)
	case CheckText(e.Source) != "":
		return "", "source " + CheckText(e.Source)
	}
	if errs := LogAttributeLimits.Check("attributes", e.Attributes); len(errs) > 0 {
		return "", errs[0].Field + " " + errs[0].Message
	}
	return severity, ""
}

// copyLogs registers the hosts of a log write, setting each one's id where its lines point, and writes
// lines in one COPY. A host's id comes from the cache, which may hold it after the host was deleted or
// renamed through the API: the transaction checks them first and, when one is stale, that host is
// registered again and the lines go under the new id, so that they never point at a host that is gone.
func (s *Service) copyLogs(ctx context.Context, tenant uuid.UUID, hosts []logHost, lines [][]any) error {
	for attempt := 0; ; attempt++ {
		for _, h := range hosts {
			var details *HostDetails
			if h.host.Labels != nil || h.host.Metadata != nil {
				details = &HostDetails{Labels: h.host.Labels, Metadata: h.host.Metadata}
			}
			id, err := s.Host(ctx, tenant, h.host.Name, details)
			if err != nil {
				return err
			}
			*h.id = id
		}
		var stale *logHost
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for i, h := range hosts {
				current, err := dbsqlc.New(tx).HostIsCurrent(ctx, dbsqlc.HostIsCurrentParams{TenantID: tenant, ID: *h.id, Name: h.host.Name})
				if err != nil {
					return err
				}
				if !current {
					stale = &hosts[i]
					return nil
				}
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"ts", "logs"},
				[]string{"time", "tenant_id", "host_id", "source", "severity", "message", "attributes"}, pgx.CopyFromRows(lines))
			return err
		})
		switch {
		case err != nil:
			return s.classify(fmt.Errorf("write logs: %w", err))
		case stale == nil:
			return nil
		case attempt == 2:
			return fmt.Errorf("write logs: host %q keeps changing its id", stale.host.Name)
		}
		s.resolver.forgetHost(tenant, stale.host.Name, *stale.id)
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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

// Severities are the stored severities, syslog's, least severe first.
var Severities = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// severityAliases maps what agents commonly send to a stored severity.
var severityAliases = map[string]string{
	"": "info", "trace": "debug", "debug": "debug", "info": "info", "information": "info", "notice": "notice",
	"warn": "warning", "warning": "warning", "err": "error", "error": "error", "crit": "critical", "critical": "critical",
	"fatal": "critical", "alert": "alert", "emerg": "emergency", "emergency": "emergency", "panic": "emergency",
}

// Limits of one log line.
const (
	maxLogMessage    = 32 << 10
	maxLogSource     = 256
	maxLogAttributes = 64
)

// WriteLogs validates a log push and writes its valid lines for tenant in one COPY.
func (s *Service) WriteLogs(ctx context.Context, tenant uuid.UUID, push LogPush) (Result, error) {
	var res Result
	var hostID *int64
	if push.Host != nil {
		if push.Host.Name == "" {
			return res, fmt.Errorf("host.name is required when host is given")
		}
		id, err := s.Host(ctx, tenant, push.Host.Name, &HostDetails{Labels: push.Host.Labels, Metadata: push.Host.Metadata})
		if err != nil {
			return res, err
		}
		hostID = &id
	}
	now := s.now()
	oldest, newest := now.Add(-s.cfg.RawRetention).UnixMilli(), now.Add(s.cfg.MaxFuture).UnixMilli()
	tid := pgtype.UUID{Bytes: tenant, Valid: true}
	var lines [][]any
	for i, e := range push.Entries {
		reject := func(reason string) { s.reject(&res, i, -1, "log_invalid", "%s", reason) }
		severity, known := severityAliases[strings.ToLower(e.Severity)]
		attrs := []byte("{}")
		if e.Attributes != nil {
			attrs, _ = json.Marshal(e.Attributes)
		}
		switch {
		case e.Time < oldest || e.Time > newest:
			reject(fmt.Sprintf("entry %d: time %d is outside the accepted window (raw retention back, %s ahead)", i, e.Time, s.cfg.MaxFuture))
		case !known:
			reject(fmt.Sprintf("entry %d: severity %.20q is not one of %s", i, e.Severity, strings.Join(Severities, ", ")))
		case e.Message == "" || len(e.Message) > maxLogMessage || !utf8.ValidString(e.Message):
			reject(fmt.Sprintf("entry %d: message must be 1 to %d bytes of UTF-8", i, maxLogMessage))
		case len(e.Source) > maxLogSource || !utf8.ValidString(e.Source):
			reject(fmt.Sprintf("entry %d: source must be at most %d bytes of UTF-8", i, maxLogSource))
		case len(e.Attributes) > maxLogAttributes:
			reject(fmt.Sprintf("entry %d: at most %d attributes", i, maxLogAttributes))
		default:
			lines = append(lines, []any{time.UnixMilli(e.Time), tid, hostID, e.Source, severity, e.Message, attrs})
		}
	}
	if len(lines) == 0 {
		return res, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"ts", "logs"},
			[]string{"time", "tenant_id", "host_id", "source", "severity", "message", "attributes"}, pgx.CopyFromRows(lines))
		return err
	})
	if err != nil {
		return res, s.classify(fmt.Errorf("write logs: %w", err))
	}
	res.Accepted = len(lines)
	s.m.accepted.WithLabelValues("logs").Add(float64(len(lines)))
	return res, nil
}

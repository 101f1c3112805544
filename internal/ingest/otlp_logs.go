package ingest

// OTLP logs → ts.logs, record by record:
//
//   - time: time_unix_nano, or observed_time_unix_nano when it is 0 (to the millisecond, as every log push);
//   - severity: severity_number's range (TRACE and DEBUG → debug, INFO → info, WARN → warning, ERROR → error,
//     FATAL → critical); without a number, severity_text read as our log pushes read severities
//     (warn, err, fatal…); without either, or with a text we do not know, info;
//   - message: the body as text (a map or array body as JSON); a record without a body takes its event
//     name, and without one is refused;
//   - source: the resource's service.name, else the scope's name, else "otlp";
//   - host: the resource's host.name (registered like a pushing agent's host);
//   - attributes: the record's attributes, trace_id and span_id when set, then the resource's attributes
//     (those otlpUnlabelled lists aside) in name order while they fit the limits of a line's attributes;
//     the answer names the resource attributes dropped.

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// DecodeOTLPLogs decodes the body of POST /v1/logs. A body that is not an ExportLogsServiceRequest is an
// error (400).
func DecodeOTLPLogs(body []byte, enc OTLPEncoding) (plog.Logs, error) {
	req := plogotlp.NewExportRequest()
	var err error
	if enc == OTLPJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return plog.Logs{}, fmt.Errorf("malformed OTLP logs request: %w", err)
	}
	return req.Logs(), nil
}

// EncodeOTLPLogsResponse is the answer to a logs export: empty when everything was stored, else with
// partial_success.
func EncodeOTLPLogsResponse(res OTLPResult, enc OTLPEncoding) ([]byte, error) {
	resp := plogotlp.NewExportResponse()
	if res.Rejected > 0 || res.Message != "" {
		resp.PartialSuccess().SetRejectedLogRecords(int64(res.Rejected))
		resp.PartialSuccess().SetErrorMessage(res.Message)
	}
	if enc == OTLPJSON {
		return resp.MarshalJSON()
	}
	return resp.MarshalProto()
}

// OTLPSeverity maps an OTLP log record's severity to a stored one.
func OTLPSeverity(number plog.SeverityNumber, text string) string {
	switch {
	case number >= plog.SeverityNumberTrace && number <= plog.SeverityNumberDebug4:
		return "debug"
	case number >= plog.SeverityNumberInfo && number <= plog.SeverityNumberInfo4:
		return "info"
	case number >= plog.SeverityNumberWarn && number <= plog.SeverityNumberWarn4:
		return "warning"
	case number >= plog.SeverityNumberError && number <= plog.SeverityNumberError4:
		return "error"
	case number >= plog.SeverityNumberFatal && number <= plog.SeverityNumberFatal4:
		return "critical"
	}
	if s, ok := severityAliases[strings.ToLower(text)]; ok {
		return s
	}
	return "info"
}

// WriteOTLPLogs stores an OTLP logs export for tenant and says, in log records, what was stored and what
// refused. Errors are the service's (unavailable): nothing was stored then.
func (s *Service) WriteOTLPLogs(ctx context.Context, tenant uuid.UUID, ld plog.Logs) (OTLPResult, error) {
	var groups []LogPush
	refused := map[int]string{} // by record, before the service sees them
	dropped := map[string]bool{}
	records := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		rattrs := rl.Resource().Attributes()
		var host *JSONHost
		hostRefused := ""
		if v, ok := rattrs.Get(OTLPHostAttribute); ok {
			name := v.AsString()
			if why := CheckHostName(name); why != "" {
				hostRefused = "the resource's host.name " + why
			} else {
				host = &JSONHost{Name: name}
			}
		}
		service := ""
		if v, ok := rattrs.Get("service.name"); ok {
			service = v.AsString()
		}
		resource := otlpResourceAttributes(rattrs)
		group := LogPush{Host: host}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			source := service
			if source == "" {
				source = sl.Scope().Name()
			}
			if source == "" {
				source = "otlp"
			}
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				index := records
				records++
				if hostRefused != "" {
					refused[index] = hostRefused
					continue
				}
				e, why := otlpLogEntry(lr, source, resource, dropped)
				if why != "" {
					refused[index] = why
					continue
				}
				group.Entries = append(group.Entries, e)
			}
		}
		if len(group.Entries) > 0 {
			groups = append(groups, group)
		}
	}
	res, err := Result{}, error(nil)
	if len(groups) > 0 {
		if res, err = s.WriteLogGroups(ctx, tenant, "otlp_logs", groups); err != nil {
			return OTLPResult{}, err
		}
	}
	// The service counted the entries it saw; map them back to the records of the export.
	if len(res.Rejected) > 0 {
		byEntry := make([]int, 0, records-len(refused))
		for r := 0; r < records; r++ {
			if _, gone := refused[r]; !gone {
				byEntry = append(byEntry, r)
			}
		}
		for _, rj := range res.Rejected {
			refused[byEntry[rj.Series]] = rj.Reason
		}
	}
	out := OTLPResult{Accepted: records - len(refused), Rejected: len(refused)}
	var parts []string
	if len(refused) > 0 {
		ids := make([]int, 0, len(refused))
		for r := range refused {
			ids = append(ids, r)
		}
		slices.Sort(ids)
		var reasons []string
		for _, r := range ids[:min(3, len(ids))] {
			reasons = append(reasons, fmt.Sprintf("log record %d: %s", r, refused[r]))
		}
		more := ""
		if len(ids) > 3 {
			more = fmt.Sprintf("; and %d more", len(ids)-3)
		}
		parts = append(parts, fmt.Sprintf("%d log records refused: %s%s", len(ids), strings.Join(reasons, "; "), more))
	}
	if len(dropped) > 0 {
		names := make([]string, 0, len(dropped))
		for n := range dropped {
			names = append(names, n)
		}
		slices.Sort(names)
		parts = append(parts, "resource attributes dropped from log attributes (attribute limits): "+strings.Join(names, ", "))
	}
	out.Message = strings.Join(parts, ". ")
	return out, nil
}

// otlpAttribute is a resource attribute as a log line stores it.
type otlpAttribute struct {
	name  string
	value any
}

// otlpResourceAttributes are a resource's attributes that log lines carry, in name order.
func otlpResourceAttributes(attrs pcommon.Map) []otlpAttribute {
	var out []otlpAttribute
	attrs.Range(func(k string, v pcommon.Value) bool {
		if otlpLabelled(k) {
			out = append(out, otlpAttribute{k, jsonable(v.AsRaw())})
		}
		return true
	})
	slices.SortFunc(out, func(a, b otlpAttribute) int { return strings.Compare(a.name, b.name) })
	return out
}

// otlpLogEntry turns a log record into an entry, or says why it cannot be one.
func otlpLogEntry(lr plog.LogRecord, source string, resource []otlpAttribute, dropped map[string]bool) (LogEntry, string) {
	ts := lr.Timestamp()
	if ts == 0 {
		ts = lr.ObservedTimestamp()
	}
	if ts == 0 {
		return LogEntry{}, "the log record has no time (time_unix_nano and observed_time_unix_nano are 0)"
	}
	message := ""
	switch body := lr.Body(); body.Type() {
	case pcommon.ValueTypeEmpty:
	default:
		message = body.AsString()
	}
	if message == "" {
		message = lr.EventName()
	}
	if message == "" {
		return LogEntry{}, "the log record has neither a body nor an event name"
	}
	attrs := jsonable(lr.Attributes().AsRaw()).(map[string]any)
	if !lr.TraceID().IsEmpty() {
		attrs["trace_id"] = lr.TraceID().String()
	}
	if !lr.SpanID().IsEmpty() {
		attrs["span_id"] = lr.SpanID().String()
	}
	lim := LogAttributeLimits
	if len(LogAttributeLimits.Check("attributes", attrs)) == 0 {
		// The resource's attributes fill what room the record's leave, in name order.
		size, _ := jsonValueSize(attrs, lim.TotalBytes+1)
		for _, a := range resource {
			if _, taken := attrs[a.name]; taken {
				continue
			}
			n, why := jsonValueSize(a.value, lim.ValueBytes+1)
			entry := len(a.name) + 4 + n
			if why != "" || n > lim.ValueBytes || len(a.name) > lim.KeyBytes || CheckText(a.name) != "" ||
				len(attrs) >= lim.Keys || size+entry > lim.TotalBytes {
				dropped[a.name] = true
				continue
			}
			attrs[a.name] = a.value
			size += entry
		}
	}
	return LogEntry{Time: int64(ts) / 1e6, Source: source, Severity: OTLPSeverity(lr.SeverityNumber(), lr.SeverityText()),
		Message: message, Attributes: attrs}, ""
}

// jsonable makes an attribute value (pcommon's AsRaw) what encoding/json decodes into, the shape the limits
// of log attributes measure: integers become float64 where that is exact and decimal text where it is not,
// bytes base64 text (as OTLP/JSON writes them).
func jsonable(v any) any {
	switch v := v.(type) {
	case int64:
		if v >= -1<<53 && v <= 1<<53 {
			return float64(v)
		}
		return strconv.FormatInt(v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64) // JSON has no NaN or Inf
		}
		return v
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonable(e)
		}
		return out
	}
	return v
}

package agent

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

var syslogSeverities = []string{"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}

var (
	priRe       = regexp.MustCompile(`^<(\d{1,3})>`)
	levelRe     = regexp.MustCompile(`(?i)\b(?:level|lvl|severity)=["']?([a-z]+)`)
	wordLevelRe = regexp.MustCompile(`\b(EMERG(?:ENCY)?|ALERT|CRIT(?:ICAL)?|FATAL|PANIC|ERROR|ERR|WARN(?:ING)?|NOTICE|INFO|DEBUG|TRACE)\b`)
	rfc3339Re   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?`)
	syslogTSRe  = regexp.MustCompile(`^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}`)
)

// severityWord maps the spellings found in logs to the API's syslog severity names.
func severityWord(w string) string {
	switch strings.ToLower(w) {
	case "emerg", "emergency", "panic":
		return "emergency"
	case "alert":
		return "alert"
	case "crit", "critical", "fatal":
		return "critical"
	case "err", "error":
		return "error"
	case "warn", "warning":
		return "warning"
	case "notice":
		return "notice"
	case "info", "information":
		return "info"
	case "debug", "trace":
		return "debug"
	}
	return ""
}

// parseLogLine extracts time and severity from a line where they are obvious; otherwise the line is
// info at now. The message keeps the line as written, minus a syslog <PRI> prefix.
func parseLogLine(line string, now time.Time) (time.Time, string, string) {
	ts, sev, msg := now, "", line
	if m := priRe.FindStringSubmatch(msg); m != nil {
		if pri, err := strconv.Atoi(m[1]); err == nil && pri < 192 {
			sev = syslogSeverities[pri%8]
		}
		msg = msg[len(m[0]):]
	}
	if m := rfc3339Re.FindString(msg); m != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, strings.Replace(m, " ", "T", boolInt(strings.HasPrefix(layout, "2006-01-02T")))); err == nil {
				ts = t
				break
			}
		}
	} else if m := syslogTSRe.FindString(msg); m != "" {
		if t, err := time.ParseInLocation("Jan _2 15:04:05", m, now.Location()); err == nil {
			t = t.AddDate(now.Year(), 0, 0)
			if t.After(now.Add(24 * time.Hour)) { // a December line read in January
				t = t.AddDate(-1, 0, 0)
			}
			ts = t
		}
	}
	if sev == "" {
		if m := levelRe.FindStringSubmatch(msg); m != nil {
			sev = severityWord(m[1])
		}
	}
	if sev == "" {
		if m := wordLevelRe.FindString(msg); m != "" {
			sev = severityWord(m)
		}
	}
	if sev == "" {
		sev = "info"
	}
	return ts, sev, msg
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

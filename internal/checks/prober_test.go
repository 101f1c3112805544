package checks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Every outcome Probe answers can be stored and announced: a reason quoting a huge value is cut to
// MaxReasonBytes on a character boundary.
func TestProbeBoundsTheReason(t *testing.T) {
	p := NewProber(&Guard{AllowPrivate: true})
	kind := strings.Repeat("é", 4500) // quoted in the reason: "unknown check kind …"
	out := p.Probe(context.Background(), Check{Kind: kind, Timeout: time.Second})
	if len(out.Reason) > MaxReasonBytes || !utf8.ValidString(out.Reason) || !strings.HasPrefix(out.Reason, `unknown check kind "éé`) ||
		!strings.HasSuffix(out.Reason, "…") {
		t.Errorf("reason of %d bytes: %.80q…, want at most %d bytes of valid UTF-8 ending in …", len(out.Reason), out.Reason, MaxReasonBytes)
	}
}

// Texts PostgreSQL refuses (NUL bytes, invalid UTF-8) are cleaned from the whole outcome, and error
// texts of the detail are bounded like the reason.
func TestBoundedOutcomeIsStorable(t *testing.T) {
	out := bounded(Outcome{
		Reason: "agent said \x00\xff",
		Detail: map[string]any{
			"sys_descr":  "edge-1\x00",
			"values":     map[string]string{"1.3.6.1.2.1.1.5.0": "core\x00"},
			"answers":    []string{"a\x00b"},
			"walk_error": strings.Repeat("x", 2000),
			"nested":     map[string]any{"list": []any{"c\x00"}},
			"requests":   3,
		},
		Metrics: []Metric{{Name: "snmp.if_in_bps", Labels: map[string]string{"interface": "eth0\x00"}, Value: 1}},
	})
	b, err := json.Marshal(out.Detail)
	if err != nil {
		t.Fatal(err)
	}
	if out.Reason != "agent said \uFFFD" || strings.Contains(string(b), `\u0000`) || len(out.Detail["walk_error"].(string)) > MaxReasonBytes ||
		out.Detail["requests"] != 3 || out.Metrics[0].Labels["interface"] != "eth0" {
		t.Errorf("bounded outcome: reason %q, detail %s, labels %v", out.Reason, b, out.Metrics[0].Labels)
	}
}

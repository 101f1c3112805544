package alerting

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func fields(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Field)
	}
	slices.Sort(out)
	return out
}

// Every bad field of a rule is named, as the API answers it, each kind's settings included.
func TestCompileNamesEveryBadField(t *testing.T) {
	cases := []struct {
		name   string
		rule   func(r *RuleSpec)
		fields []string
	}{
		{"valid threshold", func(r *RuleSpec) {}, nil},
		{"common fields", func(r *RuleSpec) {
			r.Name, r.Severity, r.Summary, r.Description = "", "fatal", "{{.Value", "{{end}}"
			r.FlapChanges, r.Channels = 1, []int64{3, 3, -1}
			r.Escalation = []EscalationStep{{After: 5 * time.Minute, Channels: []int64{1}}, {After: time.Minute}}
		}, []string{"channels[1]", "channels[2]", "description", "escalation[1].after", "escalation[1].channels", "flapping.changes",
			"name", "severity", "summary"}},
		{"unknown kind", func(r *RuleSpec) { r.Kind = "magic" }, []string{"kind"}},
		{"threshold settings", func(r *RuleSpec) {
			r.Settings = json.RawMessage(`{"metric": "", "matchers": [{"name": "", "op": "~", "value": "x"}, {"name": "a", "op": "=~",
				"value": "("}], "window": "3x", "agg": "median", "comparator": "=>", "threshold": null, "extra": 1}`)
		}, []string{"settings.extra"}},
		{"threshold values", func(r *RuleSpec) {
			r.Settings = json.RawMessage(`{"metric": "", "matchers": [{"name": "", "op": "~", "value": "x"}, {"name": "a", "op": "=~",
				"value": "("}], "window": "3x", "agg": "median", "comparator": "=>"}`)
		}, []string{"settings.agg", "settings.comparator", "settings.matchers[0].name", "settings.matchers[0].op",
			"settings.matchers[1].value", "settings.metric", "settings.threshold", "settings.window"}},
		{"rate window", func(r *RuleSpec) {
			r.Settings = json.RawMessage(`{"metric": "x", "agg": "rate", "window": "2h", "comparator": ">", "threshold": 1}`)
		}, []string{"settings.window"}},
		{"hysteresis on the wrong side", func(r *RuleSpec) {
			r.Settings = json.RawMessage(`{"metric": "x", "comparator": ">", "threshold": 90, "recover_threshold": 95}`)
		}, []string{"settings.recover_threshold"}},
		{"wrong type", func(r *RuleSpec) { r.Settings = json.RawMessage(`{"metric": 7}`) }, []string{"settings.metric"}},
		{"absent without a subject", func(r *RuleSpec) {
			r.Kind, r.Settings = "absent", json.RawMessage(`{"silent_for": "1h", "lookback": "30m"}`)
		}, []string{"settings.lookback", "settings.metric"}},
		{"absent agents with a metric", func(r *RuleSpec) {
			r.Kind, r.Settings = "absent", json.RawMessage(`{"agents": true, "metric": "up"}`)
		}, []string{"settings.agents"}},
		{"check without a mode", func(r *RuleSpec) {
			r.Kind, r.Settings = "check", json.RawMessage(`{"check_ids": [1, 1]}`)
		}, []string{"settings.check_ids[1]", "settings.down_count"}},
		{"check availability", func(r *RuleSpec) {
			r.Kind, r.Settings = "check", json.RawMessage(`{"host_labels": {}, "availability_below": 120, "window": "1m"}`)
		}, []string{"settings.availability_below", "settings.window"}},
		{"check of an unknown kind", func(r *RuleSpec) {
			r.Kind, r.Settings = "check", json.RawMessage(`{"host_labels": {"env": "prod"}, "check_kind": "ftp", "down_count": 2}`)
		}, []string{"settings.check_kind"}},
		{"log firing at zero lines", func(r *RuleSpec) {
			r.Kind, r.Settings = "log", json.RawMessage(`{"severity": "loud", "pattern": "\\bx", "comparator": "<", "threshold": 5}`)
		}, []string{"settings.pattern", "settings.severity", "settings.threshold"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := spec("cpu", "threshold", `{"metric": "cpu", "comparator": ">", "threshold": 90}`)
			c.rule(&r)
			_, ps := r.Compile()
			if got := fields(ps); !slices.Equal(got, c.fields) {
				t.Fatalf("fields %q, want %q (%v)", got, c.fields, ps)
			}
		})
	}
}

// Apply reads the fields of a request over a base and names those it cannot read.
func TestRuleInputApply(t *testing.T) {
	var in RuleInput
	if err := json.Unmarshal([]byte(`{"name": "x", "kind": "threshold", "for": "5m", "interval": "5s", "repeat_interval": "forever",
		"flapping": {"changes": 3, "window": "2h"}, "escalation": [{"after": "15m", "channels": [4]}], "settings": {}}`), &in); err != nil {
		t.Fatal(err)
	}
	r, ps := in.Apply(DefaultRule(), true)
	if got := fields(ps); !slices.Equal(got, []string{"interval", "repeat_interval"}) {
		t.Fatalf("fields %q", got)
	}
	if r.For != 5*time.Minute || r.FlapChanges != 3 || r.FlapWindow != 2*time.Hour || r.Escalation[0].After != 15*time.Minute {
		t.Fatalf("%+v", r)
	}
	if _, ps := (RuleInput{Kind: ptr("log")}).Apply(r, false); fields(ps)[0] != "kind" {
		t.Fatalf("kind changed: %v", ps)
	}
	if _, ps := (RuleInput{}).Apply(DefaultRule(), true); !slices.Equal(fields(ps), []string{"kind", "name", "settings"}) {
		t.Fatalf("required: %v", ps)
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "7d": 7 * day} {
		if d, err := ParseDuration(in); err != nil || d != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, d, err)
		}
		if got := FormatDuration(want); got != in {
			t.Errorf("FormatDuration(%v) = %q, want %q", want, got, in)
		}
	}
	for _, bad := range []string{"", "5", "-1m", "xd", "1.5d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestRenderTemplates(t *testing.T) {
	d := TemplateData{Labels: map[string]string{"host": "web-1"}, Value: 93.456, HasValue: true, Threshold: 90, Host: "web-1"}
	if got := render(`{{.Labels.host}}: {{printf "%.1f" .Value}} > {{.Threshold}} {{.Labels.missing}}`, d, 100); got != "web-1: 93.5 > 90 " {
		t.Fatalf("%q", got)
	}
	if got := render(`{{index .Value 1}}`, d, 100); got != `{{index .Value 1}}` {
		t.Fatalf("a failing template answers its text, got %q", got)
	}
	if got := render(strings.Repeat("é", 10), d, 5); got != "éé" {
		t.Fatalf("cut on a character boundary: %q", got)
	}
}

// A recurring window occurs at the same local time across a change of daylight saving time; one
// that recurs too often is refused.
func TestWindowOccurrences(t *testing.T) {
	w := WindowSpec{Name: "n", Cron: "30 2 * * *", Duration: time.Hour, TimeZone: "America/New_York",
		StartsAt: time.Date(2025, 3, 7, 0, 0, 0, 0, time.UTC)}
	var got []string
	for _, o := range w.Occurrences(w.StartsAt, time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC), 100) {
		got = append(got, o.Start.Format("01-02 15:04"))
	}
	// 02:30 EST is 07:30 UTC; on 9 March 2025 02:30 does not exist in New York (clocks jump from 2:00 to
	// 3:00) and robfig/cron skips that day's occurrence; from 10 March 02:30 EDT is 06:30 UTC.
	if !slices.Equal(got, []string{"03-07 07:30", "03-08 07:30", "03-10 06:30"}) {
		t.Fatalf("occurrences %q", got)
	}
	busy := WindowSpec{Name: "n", Cron: "*/5 * * * *", Duration: time.Minute, TimeZone: "UTC", StartsAt: t0}
	if ps := busy.validate(t0); len(ps) != 1 || ps[0].Field != "cron" {
		t.Fatalf("a window every 5 minutes: %v", ps)
	}
	for _, bad := range []string{"@every 1h", "CRON_TZ=UTC 0 1 * * *", "61 * * * *", "* * * *"} {
		w := WindowSpec{Name: "n", Cron: bad, Duration: time.Hour, TimeZone: "UTC", StartsAt: t0}
		if ps := w.validate(t0); len(ps) != 1 || ps[0].Field != "cron" {
			t.Errorf("%q: %v", bad, ps)
		}
	}
}

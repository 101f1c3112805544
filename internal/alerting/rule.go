package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Severities of rules and their alerts, least urgent first.
var Severities = []string{"info", "warning", "critical"}

// Bounds of a rule's fields (app.alert_rules' CHECKs hold the same).
const (
	maxNameChars        = 200
	maxSummaryBytes     = 1024
	maxDescriptionBytes = 8192
	maxChannels         = 20
	maxEscalationSteps  = 5
	minInterval         = 10 * time.Second
	maxInterval         = day
	maxFor              = 7 * day
	maxRepeatInterval   = 30 * day
	maxFlapWindow       = 7 * day
)

// EscalationStep sends to more channels while an alert is still firing and unacknowledged After it
// began firing: once per step and firing.
type EscalationStep struct {
	After    time.Duration
	Channels []int64
}

// RuleSpec is a rule as the user defines it, every field set.
type RuleSpec struct {
	Name        string
	Kind        string
	Severity    string
	Labels      map[string]string
	Summary     string
	Description string
	// For is how long the condition must hold before the alert fires.
	For time.Duration
	// Interval is how often the rule is evaluated.
	Interval time.Duration
	// Repeat is how often a firing, unacknowledged alert is sent again; 0 never.
	Repeat time.Duration
	// FlapChanges and FlapWindow: an alert that goes into or out of firing more than FlapChanges times
	// within FlapWindow is flapping.
	FlapChanges int32
	FlapWindow  time.Duration
	Enabled     bool
	Channels    []int64
	Escalation  []EscalationStep
	Settings    json.RawMessage
}

// DefaultRule is a new rule before the user's fields: the only copy of the defaults.
func DefaultRule() RuleSpec {
	return RuleSpec{Severity: "warning", Labels: map[string]string{}, Interval: time.Minute, Repeat: 4 * time.Hour,
		FlapChanges: 6, FlapWindow: time.Hour, Enabled: true, Channels: []int64{}, Escalation: []EscalationStep{},
		Settings: json.RawMessage("{}")}
}

// RuleFromRow is the spec of a stored rule.
func RuleFromRow(r dbsqlc.AppAlertRule) RuleSpec {
	spec := RuleSpec{Name: r.Name, Kind: r.Kind, Severity: r.Severity, Summary: r.Summary, Description: r.Description,
		For: time.Duration(r.ForSeconds) * time.Second, Interval: time.Duration(r.IntervalSeconds) * time.Second,
		Repeat: time.Duration(r.RepeatSeconds) * time.Second, FlapChanges: r.FlapChanges,
		FlapWindow: time.Duration(r.FlapWindowSeconds) * time.Second, Enabled: r.Enabled, Channels: r.Channels,
		Escalation: escalationOf(r.Escalation), Settings: r.Settings}
	_ = json.Unmarshal(r.Labels, &spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	if spec.Channels == nil {
		spec.Channels = []int64{}
	}
	return spec
}

// storedStep is an escalation step in app.alert_rules.escalation.
type storedStep struct {
	AfterSeconds int32   `json:"after_seconds"`
	Channels     []int64 `json:"channels"`
}

func escalationOf(raw []byte) []EscalationStep {
	var stored []storedStep
	_ = json.Unmarshal(raw, &stored)
	steps := make([]EscalationStep, len(stored))
	for i, s := range stored {
		steps[i] = EscalationStep{After: time.Duration(s.AfterSeconds) * time.Second, Channels: s.Channels}
	}
	return steps
}

// EscalationJSON is the steps as app.alert_rules.escalation stores them.
func EscalationJSON(steps []EscalationStep) json.RawMessage {
	stored := make([]storedStep, len(steps))
	for i, s := range steps {
		stored[i] = storedStep{AfterSeconds: seconds(s.After), Channels: s.Channels}
	}
	return mustJSON(stored)
}

// RuleInput is the body of POST and PATCH /alert-rules; fields left out keep their value (or default).
type RuleInput struct {
	Name           *string            `json:"name"`
	Kind           *string            `json:"kind"`
	Severity       *string            `json:"severity"`
	Labels         *map[string]string `json:"labels"`
	Summary        *string            `json:"summary"`
	Description    *string            `json:"description"`
	For            *string            `json:"for"`
	Interval       *string            `json:"interval"`
	RepeatInterval *string            `json:"repeat_interval"`
	Flapping       *FlappingInput     `json:"flapping"`
	Enabled        *bool              `json:"enabled"`
	Channels       *[]int64           `json:"channels"`
	Escalation     *[]StepInput       `json:"escalation"`
	Settings       *json.RawMessage   `json:"settings"`
}

// FlappingInput is a rule's flapping detection: more than Changes changes within Window.
type FlappingInput struct {
	Changes *int32  `json:"changes"`
	Window  *string `json:"window"`
}

// StepInput is one escalation step of a request.
type StepInput struct {
	After    string  `json:"after"`
	Channels []int64 `json:"channels"`
}

// Apply puts the input over base (DefaultRule for a new rule) and returns the result with the
// problems of the fields it could not read; Compile checks the rest.
func (in RuleInput) Apply(base RuleSpec, creating bool) (RuleSpec, []Problem) {
	var ps problems
	r := base
	if creating {
		if in.Name == nil {
			ps.add("name", "is required")
		}
		if in.Kind == nil {
			ps.add("kind", "is required")
		}
		if in.Settings == nil {
			ps.add("settings", "is required")
		}
	} else if in.Kind != nil && *in.Kind != base.Kind {
		ps.add("kind", "cannot change; create a new rule instead")
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.Name, in.Name)
	if creating {
		set(&r.Kind, in.Kind)
	}
	set(&r.Severity, in.Severity)
	set(&r.Summary, in.Summary)
	set(&r.Description, in.Description)
	if in.Labels != nil {
		r.Labels = *in.Labels
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
	}
	durationField(&ps, "for", in.For, &r.For, 0, maxFor)
	durationField(&ps, "interval", in.Interval, &r.Interval, minInterval, maxInterval)
	durationField(&ps, "repeat_interval", in.RepeatInterval, &r.Repeat, 0, maxRepeatInterval)
	if f := in.Flapping; f != nil {
		if f.Changes != nil {
			r.FlapChanges = *f.Changes
		}
		durationField(&ps, "flapping.window", f.Window, &r.FlapWindow, time.Minute, maxFlapWindow)
	}
	if in.Enabled != nil {
		r.Enabled = *in.Enabled
	}
	if in.Channels != nil {
		r.Channels = *in.Channels
		if r.Channels == nil {
			r.Channels = []int64{}
		}
	}
	if in.Escalation != nil {
		r.Escalation = make([]EscalationStep, 0, len(*in.Escalation))
		for i, s := range *in.Escalation {
			step := EscalationStep{Channels: s.Channels}
			after := s.After
			durationField(&ps, fmt.Sprintf("escalation[%d].after", i), &after, &step.After, time.Minute, maxFor)
			r.Escalation = append(r.Escalation, step)
		}
	}
	if in.Settings != nil {
		r.Settings = *in.Settings
	}
	return r, ps
}

// CompiledRule is a valid rule and what its kind compiled of it: ready to store.
type CompiledRule struct {
	RuleSpec
	Compiled
}

// Compile validates every field of r and compiles its settings, returning every problem.
func (r RuleSpec) Compile() (CompiledRule, []Problem) {
	var ps problems
	if n := utf8.RuneCountInString(r.Name); n < 1 || n > maxNameChars {
		ps.add("name", fmt.Sprintf("must be 1 to %d characters", maxNameChars))
	}
	if !slices.Contains(Severities, r.Severity) {
		ps.add("severity", "must be one of "+strings.Join(Severities, ", "))
	}
	validLabels(&ps, "labels", r.Labels)
	if len(r.Summary) > maxSummaryBytes {
		ps.add("summary", fmt.Sprintf("must be at most %d bytes", maxSummaryBytes))
	} else if err := parseTemplate(r.Summary); err != nil {
		ps.add("summary", "is not a valid template: "+err.Error())
	}
	if len(r.Description) > maxDescriptionBytes {
		ps.add("description", fmt.Sprintf("must be at most %d bytes", maxDescriptionBytes))
	} else if err := parseTemplate(r.Description); err != nil {
		ps.add("description", "is not a valid template: "+err.Error())
	}
	if r.FlapChanges < 2 || r.FlapChanges > 1000 {
		ps.add("flapping.changes", "must be from 2 to 1000")
	}
	validChannels(&ps, "channels", r.Channels, false)
	if len(r.Escalation) > maxEscalationSteps {
		ps.add("escalation", fmt.Sprintf("must have at most %d steps", maxEscalationSteps))
	}
	for i, s := range r.Escalation {
		validChannels(&ps, fmt.Sprintf("escalation[%d].channels", i), s.Channels, true)
		if i > 0 && s.After <= r.Escalation[i-1].After {
			ps.add(fmt.Sprintf("escalation[%d].after", i), "must be later than the step before")
		}
	}
	out := CompiledRule{RuleSpec: r}
	k, ok := Lookup(r.Kind)
	if !ok {
		ps.add("kind", "must be one of "+strings.Join(Names(), ", "))
		return out, ps
	}
	var settings map[string]json.RawMessage
	if json.Unmarshal(r.Settings, &settings) != nil || settings == nil {
		ps.add("settings", "must be an object")
		return out, ps
	}
	compiled, kindProblems := k.Compile(r.Settings)
	ps = append(ps, prefixed("settings.", kindProblems)...)
	out.Compiled = compiled
	if len(ps) > 0 {
		return out, ps
	}
	return out, nil
}

func validChannels(ps *problems, field string, ids []int64, required bool) {
	switch {
	case len(ids) > maxChannels:
		ps.add(field, fmt.Sprintf("must name at most %d channels", maxChannels))
		return
	case required && len(ids) == 0:
		ps.add(field, "must name at least one channel")
	}
	for i, id := range ids {
		if id <= 0 {
			ps.add(fmt.Sprintf("%s[%d]", field, i), "must be a channel id")
		} else if slices.Index(ids, id) < i {
			ps.add(fmt.Sprintf("%s[%d]", field, i), "names a channel twice")
		}
	}
}

// CheckChannels refuses channel ids that are not channels of the current tenant (q runs as the
// tenant), naming each: channels[1], escalation[0].channels[2].
func CheckChannels(ctx context.Context, q *dbsqlc.Queries, r RuleSpec) ([]Problem, error) {
	ids := slices.Clone(r.Channels)
	for _, s := range r.Escalation {
		ids = append(ids, s.Channels...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	known, err := q.AlertRuleKnownChannels(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up channels: %w", err)
	}
	var ps problems
	check := func(field string, list []int64) {
		for i, id := range list {
			if !slices.Contains(known, id) {
				ps.add(fmt.Sprintf("%s[%d]", field, i), "no such channel")
			}
		}
	}
	check("channels", r.Channels)
	for i, s := range r.Escalation {
		check(fmt.Sprintf("escalation[%d].channels", i), s.Channels)
	}
	return ps, nil
}

// TemplateData is what a rule's summary and description templates see: {{.Labels.host}},
// {{printf "%.1f" .Value}}, {{.Threshold}}, {{.Host}}, {{.Check}}.
type TemplateData struct {
	Labels map[string]string
	// Value is the value at the evaluation (0 when there is none: HasValue says).
	Value     float64
	HasValue  bool
	Threshold float64
	// Host and Check name what the alert is about; empty when it is about neither.
	Host, Check string
	Rule        string
	Severity    string
	State       string
}

// templates caches parsed templates by text: a rule's are parsed once, not at every transition.
var templates = struct {
	sync.Mutex
	m map[string]*template.Template
}{m: map[string]*template.Template{}}

func parseTemplate(text string) error {
	_, err := cachedTemplate(text)
	return err
}

func cachedTemplate(text string) (*template.Template, error) {
	templates.Lock()
	defer templates.Unlock()
	if t, ok := templates.m[text]; ok {
		return t, nil
	}
	t, err := template.New("t").Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, err
	}
	if len(templates.m) > 10_000 {
		clear(templates.m)
	}
	templates.m[text] = t
	return t, nil
}

// render executes a template, cutting its output at limit bytes. A template that fails (a function
// given a wrong type, say) answers its own text, so that a message always says something.
func render(text string, d TemplateData, limit int) string {
	if text == "" {
		return ""
	}
	t, err := cachedTemplate(text)
	if err != nil {
		return text
	}
	var b strings.Builder
	if err := t.Execute(&limitedWriter{b: &b, left: limit}, d); err != nil && b.Len() < limit {
		return text
	}
	return b.String()
}

// limitedWriter keeps the first left bytes written and drops the rest, cut on a character boundary.
type limitedWriter struct {
	b    *strings.Builder
	left int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.left <= 0 {
		return n, nil
	}
	if len(p) > w.left {
		cut := w.left
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		p = p[:cut]
	}
	w.b.Write(p)
	w.left -= len(p)
	if len(p) < n {
		w.left = 0
	}
	return n, nil
}

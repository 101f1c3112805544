// Package alerting is the alert engine: the registry of rule kinds (what a rule of each kind may say,
// compiled into what its evaluation statement reads), the pure decisions of the alert lifecycle, and the
// alerter role's service that evaluates due rules set-based in SQL and writes what changed.
//
// Evaluation is set-based: each kind has one statement (queries/alert_rules.sql, AlertEval<Kind>) that
// evaluates every claimed rule of that kind, across tenants, for every thing it is about, and answers only
// the things worth a decision — a condition that holds, an alert that is open. Go never loops over series;
// it decides, for those few things, what the alert becomes (decide.go: pure functions of the alert, what
// the evaluation found and the time, each answering a reason), and writes the transitions, their events,
// the notifications of the outbox (app.notifications) and the stream's events in one transaction per
// batch of rules, with the completion of the rules' leases (engine.go), so that a slot is evaluated once
// by one alerter however many run. A backtest runs the same statements over past times (backtest.go).
//
// Each kind is one file — threshold.go, absent.go, check.go, log.go — holding a type that implements
// Kind and its settings type. What kinds share is here (the registry), in rule.go (the fields of every
// rule, templates, channels), matchers.go and regex.go (label matchers, RE2 translated for PostgreSQL)
// and duration.go.
//
// Adding a kind:
//
//  1. Write its file: a type implementing Kind — Compile validates its settings, naming each bad field
//     as the API does (settings.window), and compiles them into the JSON object its statement reads —
//     and its tests beside it.
//  2. Write its evaluation statement in queries/alert_rules.sql, AlertEval<Kind>: it answers the objects
//     the other statements answer, ending with the same part (from "fingerprinted"); run make generate.
//  3. Register it: add it to registry and to the compile-time assertion list below.
//  4. Allow it in the database: a migration that replaces the CHECK on app.alert_rules.kind
//     (migrations/000015_alerting.up.sql); TestDatabaseAllowsExactlyTheRegisteredKinds fails until the two
//     agree.
//  5. Test it against stored data on both flavors, beside the others (kinds_db_test.go), and document
//     it: README.md's Alerting section (a worked example with curl) and the settings schema of
//     internal/api/openapi.json.
package alerting

import (
	"context"
	"encoding/json"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Kind is one kind of rule.
type Kind interface {
	// Name is the kind as app.alert_rules.kind stores it and the API names it.
	Name() string
	// Compile validates settings (a JSON object) and compiles them. Problems name their field as the API
	// does: settings.window, settings.matchers[0].value.
	Compile(settings json.RawMessage) (Compiled, []Problem)
	// Evaluate runs the kind's set-based statement over rules at each of the times: one JSON object per
	// thing worth a decision (see queries/alert_rules.sql).
	Evaluate(ctx context.Context, q *dbsqlc.Queries, rules []int64, at []time.Time) ([][]byte, error)
	// Unanswered is the value of an open alert's thing that the evaluation no longer answers: nil (not
	// known) but for log rules, where a host without matching lines counted zero.
	Unanswered() *float64
}

// Compiled is what a kind makes of a rule's settings.
type Compiled struct {
	// Settings are the settings as stored and shown: what the user sent, normalized.
	Settings json.RawMessage
	// Eval is the object the kind's statement reads (app.alert_rules.eval).
	Eval json.RawMessage
	// Threshold and Comparator describe the condition in alerts and messages; nil and empty when the
	// kind has none (absent).
	Threshold  *float64
	Comparator string
}

// registry holds every kind, in the order the API lists them.
var registry = []Kind{thresholdKind{}, absentKind{}, checkKind{}, logKind{}}

// Every kind implements Kind, checked when the package compiles.
var (
	_ Kind = thresholdKind{}
	_ Kind = absentKind{}
	_ Kind = checkKind{}
	_ Kind = logKind{}
)

// Lookup returns the kind named name.
func Lookup(name string) (Kind, bool) {
	for _, k := range registry {
		if k.Name() == name {
			return k, true
		}
	}
	return nil, false
}

// Names lists the kinds' names, in the registry's order.
func Names() []string {
	names := make([]string, len(registry))
	for i, k := range registry {
		names[i] = k.Name()
	}
	return names
}

// Problem is one bad field of a request, named as the API names it.
type Problem struct {
	Field, Message string
}

// problems collects Problems.
type problems []Problem

func (p *problems) add(field, message string) {
	*p = append(*p, Problem{Field: field, Message: message})
}

// prefixed returns ps with prefix added to every field.
func prefixed(prefix string, ps []Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = Problem{Field: prefix + p.Field, Message: p.Message}
	}
	return out
}

// mustJSON encodes values the package built itself, which always encode.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("alerting: encode " + err.Error())
	}
	return b
}

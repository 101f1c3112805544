package alerting

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Matcher is one label matcher, as Prometheus writes them: name op value, op one of =, !=, =~ and !~;
// the last two take an RE2 regular expression that must match the whole value. A label a thing does not
// have is the empty string.
type Matcher struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// maxMatchers bounds the matchers of a selector, silence or maintenance window.
const maxMatchers = 30

// Label limits, as app.hosts' and the series' (README § Pushing metrics and logs).
const (
	maxLabelName  = 128
	maxLabelValue = 1024
	maxLabels     = 30
)

// compiledMatcher is a matcher as SQL reads it (app.labels_match): a regular expression's value
// is the PostgreSQL pattern that reads the same language, anchored.
type compiledMatcher struct {
	Name  string `json:"name"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// Matchers is a list of matchers compiled for both engines.
type Matchers struct {
	list []Matcher
	sql  []compiledMatcher
	re   []*regexp.Regexp // per matcher; nil for = and !=
}

// CompileMatchers validates matchers, naming each problem by field (field[i].value), and compiles them.
func CompileMatchers(field string, ms []Matcher) (Matchers, []Problem) {
	var ps problems
	if len(ms) > maxMatchers {
		ps.add(field, fmt.Sprintf("must have at most %d matchers", maxMatchers))
		return Matchers{}, ps
	}
	out := Matchers{list: ms, sql: make([]compiledMatcher, 0, len(ms)), re: make([]*regexp.Regexp, len(ms))}
	for i, m := range ms {
		at := fmt.Sprintf("%s[%d]", field, i)
		if n := len(m.Name); n < 1 || n > maxLabelName || !utf8.ValidString(m.Name) || strings.ContainsRune(m.Name, 0) {
			ps.add(at+".name", fmt.Sprintf("must be a label name of 1 to %d bytes", maxLabelName))
		}
		c := compiledMatcher(m)
		switch m.Op {
		case "=", "!=":
			if len(m.Value) > maxLabelValue || strings.ContainsRune(m.Value, 0) {
				ps.add(at+".value", fmt.Sprintf("must be at most %d bytes", maxLabelValue))
			}
		case "=~", "!~":
			goRE, pg, err := compileRE2(m.Value)
			if err != nil {
				ps.add(at+".value", err.Error())
				continue
			}
			c.Value, out.re[i] = pg, goRE
		default:
			ps.add(at+".op", "must be one of =, !=, =~, !~")
		}
		out.sql = append(out.sql, c)
	}
	if len(ps) > 0 {
		return Matchers{}, ps
	}
	return out, nil
}

// Match says whether labels match every matcher, as app.labels_match does in SQL.
func (m Matchers) Match(labels map[string]string) bool {
	for i, x := range m.list {
		v := labels[x.Name]
		switch x.Op {
		case "=":
			if v != x.Value {
				return false
			}
		case "!=":
			if v == x.Value {
				return false
			}
		case "=~":
			if !m.re[i].MatchString(v) {
				return false
			}
		case "!~":
			if m.re[i].MatchString(v) {
				return false
			}
		}
	}
	return true
}

// List is the matchers as given.
func (m Matchers) List() []Matcher {
	if m.list == nil {
		return []Matcher{}
	}
	return m.list
}

// SQL is the matchers compiled for app.labels_match.
func (m Matchers) SQL() []compiledMatcher {
	if m.sql == nil {
		return []compiledMatcher{}
	}
	return m.sql
}

// MatchersOf compiles matchers that were validated when they were stored. One that no longer compiles
// (it cannot happen short of a change to the rules of validation) matches nothing, so that a silence
// never widens.
func MatchersOf(ms []Matcher) Matchers {
	c, ps := CompileMatchers("matchers", ms)
	if len(ps) > 0 {
		return Matchers{list: []Matcher{{Name: "\x00", Op: "=", Value: "\x00never"}}}
	}
	return c
}

// validLabels checks a map of labels against the label limits, naming each bad one by field.
func validLabels(ps *problems, field string, labels map[string]string) {
	if len(labels) > maxLabels {
		ps.add(field, fmt.Sprintf("must have at most %d labels", maxLabels))
		return
	}
	for k, v := range labels {
		if n := len(k); n < 1 || n > maxLabelName {
			ps.add(field, fmt.Sprintf("label names must be 1 to %d bytes", maxLabelName))
		}
		if len(v) > maxLabelValue {
			ps.add(field+"."+k, fmt.Sprintf("must be at most %d bytes", maxLabelValue))
		}
	}
}

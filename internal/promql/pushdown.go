package promql

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// sqlFilter is what of a selector's matchers SQL applies when it reads the tenant's series
// (SeriesPromSelect). It only narrows what is read: every matcher is applied again, exactly, to the
// series read (matchAll), so a matcher SQL cannot express is simply left to Go.
type sqlFilter struct {
	// names are the PromQL names a series may have; nil: any.
	names []string
	// nameLike is a LIKE pattern its PromQL name matches (a prefix); nil: any.
	nameLike *string
	// labels is a jsonpath predicate its labels satisfy; nil: any.
	labels *string
	// none: the matchers match no series at all (a name that is two things at once, an empty name).
	none bool
}

// pushDown works out the sqlFilter of a selector's matchers:
//
//   - __name__ = "x" and __name__ =~ "x|y" (an alternation of literals) become a list of names, served
//     by the index on the tenant's PromQL names; __name__ =~ "node_cpu.*" becomes a prefix (LIKE);
//   - on other labels, =, != and =~, !~ over alternations of literals become a jsonpath predicate, as
//     does a prefix of =~ when the expression cannot match the empty string; the predicates treat an
//     absent label as the empty string, as PromQL does;
//   - everything else (other regular expressions, != on the name) is left to Go.
//
// A value that no stored text can hold (a NUL, bytes that are not UTF-8: PromQL's escapes can write
// them) is not pushed: Go's check answers for it.
func pushDown(ms []*labels.Matcher) sqlFilter {
	var f sqlFilter
	var preds []string
	for _, m := range ms {
		if m.Name == model.MetricNameLabel {
			f.pushName(m)
			continue
		}
		if !storable(m.Name) {
			continue
		}
		if p := labelPredicate(m); p != "" {
			preds = append(preds, p)
		}
	}
	if len(preds) > 0 {
		p := strings.Join(preds, " && ")
		f.labels = &p
	}
	return f
}

// pushName narrows the names by one matcher on __name__.
func (f *sqlFilter) pushName(m *labels.Matcher) {
	var set []string
	switch m.Type {
	case labels.MatchEqual:
		set = []string{m.Value}
	case labels.MatchRegexp:
		set = m.SetMatches()
		if set == nil {
			if prefix := m.Prefix(); prefix != "" && storable(prefix) && f.nameLike == nil {
				like := likeEscape(prefix) + "%"
				f.nameLike = &like
			}
			return
		}
	default:
		return // != and !~ on the name: Go
	}
	// Every series has a non-empty name; names no stored text can hold match nothing stored either.
	set = slices.DeleteFunc(slices.Clone(set), func(s string) bool { return s == "" || !storable(s) })
	if f.names != nil {
		set = slices.DeleteFunc(set, func(s string) bool { return !slices.Contains(f.names, s) })
	}
	slices.Sort(set)
	f.names = slices.Compact(set)
	if len(f.names) == 0 {
		f.none = true
	}
}

// labelPredicate is the jsonpath predicate of one matcher on a label other than __name__, or "" when
// it is left to Go.
func labelPredicate(m *labels.Matcher) string {
	key := `$.` + jsonpathString(m.Name)
	present := `exists(` + key + ` ? (@ != ""))`
	switch m.Type {
	case labels.MatchEqual, labels.MatchNotEqual:
		if !storable(m.Value) {
			return ""
		}
		p := `exists(` + key + ` ? (@ == ` + jsonpathString(m.Value) + `))`
		if m.Value == "" {
			p = `!(` + present + `)`
		}
		if m.Type == labels.MatchNotEqual {
			p = `!(` + p + `)`
		}
		return p
	case labels.MatchRegexp, labels.MatchNotRegexp:
		set := m.SetMatches()
		if set == nil {
			if m.Type == labels.MatchRegexp && !m.Matches("") {
				if prefix := m.Prefix(); prefix != "" && storable(prefix) {
					return `exists(` + key + ` ? (@ starts with ` + jsonpathString(prefix) + `))`
				}
			}
			return ""
		}
		var alts []string
		empty := false
		for _, v := range set {
			switch {
			case v == "":
				empty = true
			case storable(v):
				alts = append(alts, `@ == `+jsonpathString(v))
			}
		}
		var ors []string
		if len(alts) > 0 {
			ors = append(ors, `exists(`+key+` ? (`+strings.Join(alts, " || ")+`))`)
		}
		if empty {
			ors = append(ors, `!(`+present+`)`)
		}
		if len(ors) == 0 {
			return "" // only values no stored text can hold: Go's check answers
		}
		p := `(` + strings.Join(ors, " || ") + `)`
		if m.Type == labels.MatchNotRegexp {
			p = `!(` + p + `)`
		}
		return p
	}
	return ""
}

// jsonpathString quotes s as a jsonpath string literal: JSON's escapes, which PostgreSQL's jsonpath
// reads (\", \\, \uXXXX for control characters).
func jsonpathString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u`)
			h := strconv.FormatInt(int64(r), 16)
			b.WriteString(strings.Repeat("0", 4-len(h)))
			b.WriteString(h)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// likeEscape escapes LIKE's wildcards and its escape character in s.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// storable tells whether PostgreSQL's text (and so a stored name or label) can hold s: UTF-8 without NUL.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// matchAll applies every matcher to a series' labels, exactly as the engine expects of a selection.
func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

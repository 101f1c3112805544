package alerting

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Silences mute the messages of the alerts whose labels match all their matchers, from starts_at to
// ends_at; the alerts still change state, and show silenced_by.

// maxSilenceLength bounds a silence.
const maxSilenceLength = 366 * day

// SilenceSpec is a silence as the user defines it.
type SilenceSpec struct {
	Matchers []Matcher
	StartsAt time.Time
	EndsAt   time.Time
	Comment  string
}

// SilenceFromRow is the spec of a stored silence.
func SilenceFromRow(s dbsqlc.AppSilence) SilenceSpec {
	spec := SilenceSpec{StartsAt: s.StartsAt, EndsAt: s.EndsAt, Comment: s.Comment}
	_ = json.Unmarshal(s.Matchers, &spec.Matchers)
	return spec
}

// SilenceInput is the body of POST and PATCH /silences; fields left out keep their value.
type SilenceInput struct {
	Matchers *[]Matcher `json:"matchers"`
	StartsAt *string    `json:"starts_at"`
	EndsAt   *string    `json:"ends_at"`
	Comment  *string    `json:"comment"`
}

// Apply puts the input over base (for a new silence, one starting now) and validates the result.
func (in SilenceInput) Apply(base SilenceSpec, creating bool) (SilenceSpec, []Problem) {
	var ps problems
	s := base
	if creating {
		if in.Matchers == nil {
			ps.add("matchers", "is required: at least one matcher")
		}
		if in.EndsAt == nil {
			ps.add("ends_at", "is required")
		}
	}
	if in.Matchers != nil {
		s.Matchers = *in.Matchers
	}
	if in.Comment != nil {
		s.Comment = *in.Comment
	}
	for _, f := range []struct {
		field string
		in    *string
		dst   *time.Time
	}{{"starts_at", in.StartsAt, &s.StartsAt}, {"ends_at", in.EndsAt, &s.EndsAt}} {
		if f.in == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, *f.in)
		if err != nil {
			ps.add(f.field, "must be a time in RFC 3339 (2026-03-01T02:00:00Z)")
			continue
		}
		*f.dst = t
	}
	if len(ps) > 0 {
		return s, ps
	}
	if len(s.Matchers) == 0 {
		ps.add("matchers", "must have at least one matcher: a silence of everything is a maintenance window")
	}
	_, mps := CompileMatchers("matchers", s.Matchers)
	ps = append(ps, mps...)
	switch {
	case !s.EndsAt.After(s.StartsAt):
		ps.add("ends_at", "must be after starts_at")
	case s.EndsAt.Sub(s.StartsAt) > maxSilenceLength:
		ps.add("ends_at", fmt.Sprintf("a silence lasts at most %s", FormatDuration(maxSilenceLength)))
	}
	if len(s.Comment) > maxCommentBytes {
		ps.add("comment", fmt.Sprintf("must be at most %d bytes", maxCommentBytes))
	}
	return s, ps
}

// MatchersJSON is the matchers as stored.
func (s SilenceSpec) MatchersJSON() json.RawMessage { return mustJSON(s.Matchers) }

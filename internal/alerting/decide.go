package alerting

import (
	"fmt"
	"time"
)

// The decisions of the alert lifecycle. Each is a pure function of the alert as stored, what an
// evaluation found and the time (the clock is the caller's), and says why it decided what it did; the
// engine applies them and writes the outcome, and the tests run them without a database.
//
// States: an alert is pending while its condition holds for less than the rule's `for`, then firing;
// a firing alert is resolved once its condition no longer holds (past the recovery threshold when the
// rule has one); a pending alert whose condition stops holding is inactive. A firing alert whose check's
// parent is down is suppressed instead, and sends nothing until the parent is up again. Silences and
// maintenance windows mute messages, not states. An alert that goes into or out of firing more than the
// rule's flap count within its flap window is flapping: it sends one flapping message and nothing else
// until no change has happened for a whole window, when it settles and says where it stands.

// State is an alert's state; the zero value is an alert that does not exist yet (inactive).
type State string

// States of an alert.
const (
	Inactive   State = "inactive"
	Pending    State = "pending"
	Firing     State = "firing"
	Resolved   State = "resolved"
	Suppressed State = "suppressed"
)

// Open says whether an alert in state s is still being watched: pending, firing or suppressed.
func (s State) Open() bool { return s == Pending || s == Firing || s == Suppressed }

// Alert is the part of an alert the decisions read and change.
type Alert struct {
	State        State
	ActiveSince  *time.Time // when the condition began to hold (the pending episode)
	StartedAt    *time.Time // when it began firing
	ResolvedAt   *time.Time
	Notified     bool       // receivers were told it fires, and not yet that it resolved
	LastNotified *time.Time // the last firing or repeat message
	Escalated    int        // escalation steps sent in this firing
	Flapping     bool
	Changes      []time.Time // changes into and out of firing within the flap window
	Acked        bool
}

// Condition is what one evaluation found about the thing.
type Condition struct {
	// Holds: the rule's condition holds (past the threshold).
	Holds bool
	// Recovered: the value is past the recovery threshold (the threshold when the rule has none), or
	// there is none; a firing alert resolves on it.
	Recovered bool
	// ParentDown names the alert's check's parent when that is down; empty otherwise.
	ParentDown string
	// Disabled: the rule was disabled; its open alerts close.
	Disabled bool
}

// Timing is what a rule says about time.
type Timing struct {
	For         time.Duration
	Repeat      time.Duration // 0: never
	Escalation  []time.Duration
	FlapChanges int
	FlapWindow  time.Duration
}

// Mute says what keeps an alert's messages back at the time: the silences and maintenance windows that
// cover it.
type Mute struct {
	Silences []int64
	Windows  []int64
}

// Muted is whether anything mutes the alert.
func (m Mute) Muted() bool { return len(m.Silences) > 0 || len(m.Windows) > 0 }

func (m Mute) reason() string {
	switch {
	case len(m.Silences) > 0:
		return fmt.Sprintf("silenced by %v", m.Silences)
	case len(m.Windows) > 0:
		return fmt.Sprintf("in maintenance window %v", m.Windows)
	}
	return ""
}

// NextState is the state an alert moves to, and why; the same state (and no reason) when it stays.
func NextState(a Alert, c Condition, t Timing, now time.Time) (State, string) {
	state := a.State
	if state == "" {
		state = Inactive
	}
	if c.Disabled {
		switch state {
		case Firing:
			return Resolved, "the rule was disabled"
		case Pending, Suppressed:
			return Inactive, "the rule was disabled"
		}
		return state, ""
	}
	fire := func(why string) (State, string) {
		if c.ParentDown != "" {
			return Suppressed, fmt.Sprintf("%s, but the parent check %q is down", why, c.ParentDown)
		}
		return Firing, why
	}
	switch state {
	case Firing:
		if c.Recovered {
			return Resolved, "the condition no longer holds"
		}
	case Suppressed:
		switch {
		case c.Recovered:
			return Inactive, "the condition no longer holds"
		case c.ParentDown == "":
			return Firing, "the parent check is up again and the condition still holds"
		}
	case Pending:
		switch {
		case !c.Holds:
			return Inactive, "the condition stopped holding before " + FormatDuration(t.For)
		case a.ActiveSince == nil || now.Sub(*a.ActiveSince) >= t.For:
			return fire("the condition held for " + FormatDuration(t.For))
		}
	default: // inactive, resolved
		switch {
		case !c.Holds:
		case t.For <= 0:
			return fire("the condition holds")
		default:
			return Pending, "the condition holds; firing if it still does after " + FormatDuration(t.For)
		}
	}
	return state, ""
}

// IsFlapping says whether an alert with these changes into and out of firing is flapping at now, and
// returns the changes still within the window. An alert starts flapping when more than FlapChanges
// changes fall within FlapWindow, and settles once none has for a whole window.
func IsFlapping(changes []time.Time, wasFlapping bool, t Timing, now time.Time) (bool, []time.Time, string) {
	kept := changes[:0:0]
	for _, c := range changes {
		if now.Sub(c) < t.FlapWindow {
			kept = append(kept, c)
		}
	}
	switch {
	case !wasFlapping && t.FlapChanges > 0 && len(kept) > t.FlapChanges:
		return true, kept, fmt.Sprintf("changed state %d times within %s", len(kept), FormatDuration(t.FlapWindow))
	case wasFlapping && len(kept) == 0:
		return false, kept, "no change of state for " + FormatDuration(t.FlapWindow)
	}
	return wasFlapping, kept, ""
}

// RepeatDue says whether a firing alert is sent again now: it was sent, it is not acknowledged, and
// the repeat interval passed since it was last sent.
func RepeatDue(a Alert, t Timing, now time.Time) (bool, string) {
	switch {
	case a.State != Firing || !a.Notified || a.LastNotified == nil:
		return false, "not a firing alert that was sent"
	case a.Acked:
		return false, "acknowledged"
	case t.Repeat <= 0:
		return false, "the rule does not repeat"
	case now.Sub(*a.LastNotified) < t.Repeat:
		return false, "sent " + FormatDuration(now.Sub(*a.LastNotified).Truncate(time.Second)) + " ago"
	}
	return true, "unacknowledged for " + FormatDuration(t.Repeat) + " since the last message"
}

// EscalationsDue lists the escalation steps due now: those not yet sent in this firing whose delay has
// passed since the alert began firing, while it is unacknowledged.
func EscalationsDue(a Alert, t Timing, now time.Time) ([]int, string) {
	if a.State != Firing || a.StartedAt == nil {
		return nil, "not firing"
	}
	if a.Acked {
		return nil, "acknowledged"
	}
	var due []int
	for i := a.Escalated; i < len(t.Escalation); i++ {
		if now.Sub(*a.StartedAt) < t.Escalation[i] {
			break
		}
		due = append(due, i)
	}
	if len(due) == 0 {
		return nil, "no step due"
	}
	return due, fmt.Sprintf("firing and unacknowledged for %s", FormatDuration(now.Sub(*a.StartedAt).Truncate(time.Second)))
}

// Message is a notification to enqueue: its kind (firing, resolved, repeat, flapping, escalation) and,
// for an escalation, its step.
type Message struct {
	Kind   string
	Step   int
	Reason string
}

// Event is a change to record in the alert's history.
type Event struct {
	Kind     string // state, flapping or settled
	From, To State
	Reason   string
}

// Outcome is what one evaluation does to an alert.
type Outcome struct {
	Alert    Alert
	Events   []Event
	Messages []Message
	// Held explains messages held back: muted, flapping, acknowledged; empty when none was.
	Held string
}

// Changed says whether the outcome changes the stored alert.
func (o Outcome) Changed(before Alert) bool {
	a := o.Alert
	return len(o.Events) > 0 || len(o.Messages) > 0 || a.State != before.State || a.Notified != before.Notified ||
		a.Escalated != before.Escalated || a.Flapping != before.Flapping || len(a.Changes) != len(before.Changes) ||
		a.Acked != before.Acked
}

// Step applies one evaluation to an alert at now: its next state, flapping, and the messages due, held
// back while mute mutes it or while it flaps.
func Step(prev Alert, c Condition, t Timing, mute Mute, now time.Time) Outcome {
	a := prev
	if a.State == "" {
		a.State = Inactive
	}
	out := Outcome{}
	next, why := NextState(a, c, t, now)
	entered := next != a.State
	if entered {
		out.Events = append(out.Events, Event{Kind: "state", From: a.State, To: next, Reason: why})
		if next == Firing || a.State == Firing {
			a.Changes = append(a.Changes, now)
		}
		switch next {
		case Pending:
			a.ActiveSince = &now
		case Firing:
			if a.ActiveSince == nil || a.State == Inactive || a.State == Resolved {
				a.ActiveSince = &now
			}
			a.StartedAt, a.ResolvedAt, a.Escalated, a.Acked = &now, nil, 0, false
		case Suppressed:
			if a.ActiveSince == nil {
				a.ActiveSince = &now
			}
		case Resolved:
			a.ResolvedAt, a.Acked = &now, false
		case Inactive:
			a.ActiveSince, a.Acked = nil, false
		}
		a.State = next
	}

	flapping, kept, flapWhy := IsFlapping(a.Changes, prev.Flapping, t, now)
	if c.Disabled && flapping {
		flapping, flapWhy = false, "the rule was disabled"
	}
	a.Changes = kept
	settled := prev.Flapping && !flapping
	if flapping != prev.Flapping {
		a.Flapping = flapping
		kind := "flapping"
		if settled {
			kind = "settled"
		}
		out.Events = append(out.Events, Event{Kind: kind, From: a.State, To: a.State, Reason: flapWhy})
	}

	muted := mute.Muted()
	hold := func(why string) {
		if out.Held == "" {
			out.Held = why
		}
	}
	send := func(m Message) {
		if muted {
			hold(mute.reason())
			return
		}
		out.Messages = append(out.Messages, m)
	}

	switch {
	case a.Flapping && !prev.Flapping:
		// One message says it flaps; receivers then count it as a problem until it settles.
		if !muted {
			a.Notified = true
		}
		send(Message{Kind: "flapping", Reason: flapWhy})
	case a.Flapping:
		if entered && (a.State == Firing || a.State == Resolved) {
			hold("flapping")
		}
	case settled:
		// Settled: say where it stands.
		if a.State == Firing {
			if !muted {
				a.Notified, a.LastNotified = true, &now
			}
			send(Message{Kind: "firing", Reason: flapWhy})
		} else if a.Notified {
			a.Notified = false
			send(Message{Kind: "resolved", Reason: flapWhy})
		}
	case a.State == Firing && !a.Notified:
		// A new firing, or one whose message a silence or a maintenance window held back.
		reason := why
		if !entered {
			reason = "no longer silenced or in maintenance"
		}
		if !muted {
			a.Notified, a.LastNotified = true, &now
		}
		send(Message{Kind: "firing", Reason: reason})
	case a.State == Resolved && a.Notified && entered:
		a.Notified = false // a resolution while muted is not sent later: the silence covered it
		send(Message{Kind: "resolved", Reason: why})
	case a.State == Firing:
		if due, repeatWhy := RepeatDue(a, t, now); due {
			if !muted {
				a.LastNotified = &now
			}
			send(Message{Kind: "repeat", Reason: repeatWhy})
		} else if a.Acked && a.Notified {
			hold("acknowledged")
		}
	}
	if a.State == Firing && !a.Flapping {
		steps, escWhy := EscalationsDue(a, t, now)
		for _, i := range steps {
			if muted {
				hold(mute.reason())
				break
			}
			a.Escalated = i + 1
			out.Messages = append(out.Messages, Message{Kind: "escalation", Step: i, Reason: escWhy})
		}
	}
	if a.State == Inactive || a.State == Resolved {
		a.Acked = false
	}
	out.Alert = a
	return out
}

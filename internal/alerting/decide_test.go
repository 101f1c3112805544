package alerting

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

var holds = Condition{Holds: true}
var clear_ = Condition{Recovered: true}

// run steps an alert through conditions one minute apart, and returns every outcome.
func run(t *testing.T, a Alert, tm Timing, mute func(i int) Mute, conds ...Condition) []Outcome {
	t.Helper()
	var outs []Outcome
	for i, c := range conds {
		m := Mute{}
		if mute != nil {
			m = mute(i)
		}
		o := Step(a, c, tm, m, at(time.Duration(i)*time.Minute))
		outs = append(outs, o)
		a = o.Alert
	}
	return outs
}

func kinds(o Outcome) string {
	var k []string
	for _, m := range o.Messages {
		k = append(k, m.Kind)
	}
	return strings.Join(k, ",")
}

func states(outs []Outcome) string {
	var s []string
	for _, o := range outs {
		s = append(s, string(o.Alert.State))
	}
	return strings.Join(s, " ")
}

func messages(outs []Outcome) string {
	var s []string
	for _, o := range outs {
		s = append(s, kinds(o))
	}
	return strings.Join(s, "|")
}

func TestNextStateFiresOnlyAfterFor(t *testing.T) {
	tm := Timing{For: 3 * time.Minute, FlapChanges: 100, FlapWindow: time.Hour}
	outs := run(t, Alert{}, tm, nil, holds, holds, holds, holds, holds, clear_)
	if got, want := states(outs), "pending pending pending firing firing resolved"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
	if got, want := messages(outs), "|||firing||resolved"; got != want {
		t.Fatalf("messages %q, want %q", got, want)
	}
	// A condition that stops holding while pending goes back to inactive and says nothing.
	outs = run(t, Alert{}, tm, nil, holds, holds, Condition{}, holds)
	if got, want := states(outs), "pending pending inactive pending"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
	if messages(outs) != "|||" {
		t.Fatalf("a pending alert sent %q", messages(outs))
	}
	if outs[2].Events[0].To != Inactive || !strings.Contains(outs[2].Events[0].Reason, "before 3m") {
		t.Fatalf("pending → inactive event %+v", outs[2].Events)
	}
}

func TestHysteresisKeepsFiringUntilRecovered(t *testing.T) {
	tm := Timing{FlapChanges: 100, FlapWindow: time.Hour}
	// Below the threshold but above the recovery threshold: no longer holds, not recovered.
	band := Condition{Holds: false, Recovered: false}
	outs := run(t, Alert{}, tm, nil, holds, band, band, clear_, band)
	if got, want := states(outs), "firing firing firing resolved resolved"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
}

func TestRepeatAndAck(t *testing.T) {
	tm := Timing{Repeat: 2 * time.Minute, FlapChanges: 100, FlapWindow: time.Hour}
	a := Alert{}
	o := Step(a, holds, tm, Mute{}, at(0))
	if kinds(o) != "firing" {
		t.Fatalf("first: %q", kinds(o))
	}
	a = o.Alert
	if due, why := RepeatDue(a, tm, at(time.Minute)); due || !strings.Contains(why, "ago") {
		t.Fatalf("repeat due after 1m: %v %q", due, why)
	}
	if due, why := RepeatDue(a, tm, at(2*time.Minute)); !due || why == "" {
		t.Fatalf("repeat not due after 2m: %q", why)
	}
	o = Step(a, holds, tm, Mute{}, at(2*time.Minute))
	if kinds(o) != "repeat" || !o.Alert.LastNotified.Equal(at(2*time.Minute)) {
		t.Fatalf("at 2m: %q, last %v", kinds(o), o.Alert.LastNotified)
	}
	a = o.Alert
	a.Acked = true
	if due, why := RepeatDue(a, tm, at(10*time.Minute)); due || why != "acknowledged" {
		t.Fatalf("acknowledged alert repeats: %v %q", due, why)
	}
	o = Step(a, holds, tm, Mute{}, at(10*time.Minute))
	if len(o.Messages) != 0 || o.Held != "acknowledged" {
		t.Fatalf("acknowledged: %q held %q", kinds(o), o.Held)
	}
	// The acknowledgement ends with the firing.
	o = Step(o.Alert, clear_, tm, Mute{}, at(11*time.Minute))
	if o.Alert.Acked || kinds(o) != "resolved" {
		t.Fatalf("resolve of an acknowledged alert: acked %v, %q", o.Alert.Acked, kinds(o))
	}
	// Repeat 0 never repeats.
	if due, why := RepeatDue(Alert{State: Firing, Notified: true, LastNotified: ptr(t0)}, Timing{}, at(day)); due || why != "the rule does not repeat" {
		t.Fatalf("repeat 0: %v %q", due, why)
	}
}

func TestSilenceHoldsMessagesNotStates(t *testing.T) {
	tm := Timing{FlapChanges: 100, FlapWindow: time.Hour}
	silenced := func(i int) Mute {
		if i < 2 {
			return Mute{Silences: []int64{7}}
		}
		return Mute{}
	}
	outs := run(t, Alert{}, tm, silenced, holds, holds, holds)
	if got := states(outs); got != "firing firing firing" {
		t.Fatalf("states %q", got)
	}
	if got := messages(outs); got != "||firing" {
		t.Fatalf("messages %q: the firing is sent once the silence ends", got)
	}
	if !strings.Contains(outs[0].Held, "silenced by [7]") {
		t.Fatalf("held %q", outs[0].Held)
	}
	// Resolving under a silence sends nothing, then or later.
	always := func(int) Mute { return Mute{Windows: []int64{3}} }
	a := Step(Alert{}, holds, tm, Mute{}, at(0)).Alert
	outs = run(t, a, tm, always, clear_, clear_)
	if messages(outs) != "|" || !strings.Contains(outs[0].Held, "maintenance window [3]") {
		t.Fatalf("resolution in maintenance: %q held %q", messages(outs), outs[0].Held)
	}
}

func TestFlappingNotifiesOnceUntilItSettles(t *testing.T) {
	tm := Timing{FlapChanges: 4, FlapWindow: 10 * time.Minute}
	var conds []Condition
	for i := range 8 {
		if i%2 == 0 {
			conds = append(conds, holds)
		} else {
			conds = append(conds, clear_)
		}
	}
	// Then it stays firing for longer than the window.
	for range 11 {
		conds = append(conds, holds)
	}
	outs := run(t, Alert{}, tm, nil, conds...)
	// Changes at minutes 0 to 8 (into firing at even minutes, out at odd ones, and into firing for good
	// at 8); flapping begins with the fifth change (minute 4), and holds back everything until it settles
	// at 18, ten minutes after the last change, saying where it stands.
	if got, want := messages(outs), "firing|resolved|firing|resolved|flapping"+strings.Repeat("|", 14)+"firing"; got != want {
		t.Fatalf("messages %q, want %q", got, want)
	}
	var flapEvents []string
	for i, o := range outs {
		for _, e := range o.Events {
			if e.Kind != "state" {
				flapEvents = append(flapEvents, e.Kind+"@"+strconv.Itoa(i))
			}
		}
	}
	if !slices.Equal(flapEvents, []string{"flapping@4", "settled@18"}) {
		t.Fatalf("flapping events %v", flapEvents)
	}
	if f, _, why := IsFlapping([]time.Time{at(0), at(time.Minute)}, false, Timing{FlapChanges: 1, FlapWindow: time.Hour}, at(2*time.Minute)); !f || why != "changed state 2 times within 1h" {
		t.Fatalf("IsFlapping: %v %q", f, why)
	}
}

func TestDependencySuppresses(t *testing.T) {
	tm := Timing{For: time.Minute, FlapChanges: 100, FlapWindow: time.Hour}
	down := Condition{Holds: true, ParentDown: "core router"}
	outs := run(t, Alert{}, tm, nil, down, down, down, holds, clear_)
	if got, want := states(outs), "pending suppressed suppressed firing resolved"; got != want {
		t.Fatalf("states %q, want %q", got, want)
	}
	if got := messages(outs); got != "|||firing|resolved" {
		t.Fatalf("messages %q", got)
	}
	if e := outs[1].Events[0]; !strings.Contains(e.Reason, `parent check "core router" is down`) {
		t.Fatalf("suppression reason %q", e.Reason)
	}
	// Suppressed, then the condition clears: back to inactive, nothing said.
	outs = run(t, Alert{}, Timing{FlapChanges: 100, FlapWindow: time.Hour}, nil, down, clear_)
	if states(outs) != "suppressed inactive" || messages(outs) != "|" {
		t.Fatalf("%q %q", states(outs), messages(outs))
	}
}

func TestEscalationOncePerStepPerFiring(t *testing.T) {
	tm := Timing{Escalation: []time.Duration{2 * time.Minute, 4 * time.Minute}, FlapChanges: 100, FlapWindow: time.Hour}
	outs := run(t, Alert{}, tm, nil, holds, holds, holds, holds, holds, holds, clear_, holds, holds, holds)
	if got := messages(outs); got != "firing||escalation||escalation||resolved|firing||escalation" {
		t.Fatalf("messages %q", got)
	}
	if outs[2].Messages[0].Step != 0 || outs[4].Messages[0].Step != 1 {
		t.Fatalf("steps %+v %+v", outs[2].Messages, outs[4].Messages)
	}
	a := outs[1].Alert
	a.Acked = true
	if due, why := EscalationsDue(a, tm, at(time.Hour)); due != nil || why != "acknowledged" {
		t.Fatalf("acknowledged escalates: %v %q", due, why)
	}
}

func TestDisabledRuleClosesItsAlerts(t *testing.T) {
	tm := Timing{FlapChanges: 100, FlapWindow: time.Hour}
	a := Step(Alert{}, holds, tm, Mute{}, at(0)).Alert
	o := Step(a, Condition{Disabled: true}, tm, Mute{}, at(time.Minute))
	if o.Alert.State != Resolved || kinds(o) != "resolved" || o.Events[0].Reason != "the rule was disabled" {
		t.Fatalf("%+v", o)
	}
	p := Step(Alert{}, holds, Timing{For: time.Hour}, Mute{}, at(0)).Alert
	if o := Step(p, Condition{Disabled: true}, tm, Mute{}, at(time.Minute)); o.Alert.State != Inactive || len(o.Messages) != 0 {
		t.Fatalf("%+v", o)
	}
}

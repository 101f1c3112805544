package checks

import (
	"fmt"
	"time"
)

// Result is one finished run of a check, as stored and as POST /checks/{id}/run answers it.
type Result struct {
	CheckID int64     `json:"check_id"`
	Time    time.Time `json:"time"`
	// Status is up or down.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// LatencyMS is the outcome's latency in milliseconds; null when the target did not answer.
	LatencyMS *float64       `json:"latency_ms"`
	Detail    map[string]any `json:"detail"`
}

// NewResult is the result of a run of check id that started at started and found out.
func NewResult(id int64, started time.Time, out Outcome) Result {
	r := Result{CheckID: id, Time: started, Status: "down", Reason: out.Reason, Detail: out.Detail}
	if out.Up {
		r.Status, r.Reason = "up", ""
	}
	if out.Latency > 0 {
		ms := float64(out.Latency) / float64(time.Millisecond)
		r.LatencyMS = &ms
	}
	return r
}

// MinRunGap is the least time between two runs of one check that a user may ask for, so the API cannot
// be used to flood a target (or the poller) through a check.
const MinRunGap = 5 * time.Second

// TooSoonError says a check ran less than MinRunGap ago.
type TooSoonError struct{ RetryAfter time.Duration }

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("the check ran less than %s ago; retry in %s", MinRunGap, e.RetryAfter.Round(100*time.Millisecond))
}

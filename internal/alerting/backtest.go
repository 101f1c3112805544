package alerting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// A backtest runs a rule that is not saved over stored history: it evaluates the rule at every slot of
// its interval from `from` to `to` with the same statements as live evaluation (the rule is stored in a
// transaction that is rolled back, so that they read it), and steps the same decisions through the
// answers. It answers the alerts that would have fired, with when they started and ended and their peak
// value. Unlike live evaluation it knows nothing of the past state of checks' parents (dependencies),
// silences or maintenance, which change messages, not alerts.

// Backtest bounds.
const (
	// MaxBacktestPoints is the most evaluation times of one backtest: (to − from) / interval.
	MaxBacktestPoints = 20_000
	maxBacktestAlerts = 1000
	backtestChunk     = 500 // evaluation times per statement
)

// ErrBacktestTooLong refuses a backtest of more than MaxBacktestPoints evaluations.
var ErrBacktestTooLong = errors.New("backtest too long")

// Backtester runs backtests of any tenant's rules as system work, bounded by a statement timeout.
type Backtester struct {
	sys     *db.System
	timeout time.Duration
}

// NewBacktester returns a backtester whose statements stop after timeout (the tenant's statement
// timeout: a backtest is a tenant's request).
func NewBacktester(sys *db.System, timeout time.Duration) *Backtester {
	return &Backtester{sys: sys, timeout: timeout}
}

// WouldBeAlert is one alert a backtest found: from Start (the evaluation it fired at) to End (the one
// it resolved at; nil when it still fired at `to`), with the peak of its value meanwhile — the highest
// for rules that fire above a threshold, the lowest for those that fire below.
type WouldBeAlert struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Host        *Ref              `json:"host"`
	Check       *Ref              `json:"check"`
	Start       time.Time         `json:"start"`
	End         *time.Time        `json:"end"`
	Peak        *float64          `json:"peak"`
}

// BacktestResult is a backtest's answer.
type BacktestResult struct {
	Evaluations int            `json:"evaluations"`
	Alerts      []WouldBeAlert `json:"alerts"`
	// Truncated: more than 1,000 alerts would have fired; the first are answered.
	Truncated bool `json:"truncated"`
}

// BacktestTimes are the evaluation times of a backtest: from, then every interval up to to.
func BacktestTimes(from, to time.Time, interval time.Duration) ([]time.Time, error) {
	if interval <= 0 || !to.After(from) {
		return nil, fmt.Errorf("a backtest needs from before to and a positive interval")
	}
	if n := to.Sub(from) / interval; n >= MaxBacktestPoints {
		return nil, fmt.Errorf("%w: %d evaluations at an interval of %s; at most %d: shorten the range or lengthen the interval",
			ErrBacktestTooLong, n+1, FormatDuration(interval), MaxBacktestPoints)
	}
	var out []time.Time
	for t := from; !t.After(to); t = t.Add(interval) {
		out = append(out, t)
	}
	return out, nil
}

// errRolledBack ends the backtest's transaction.
var errRolledBack = errors.New("backtest rolled back")

// Backtest runs rule (valid, not saved) of tenant over [from, to].
func (b *Backtester) Backtest(ctx context.Context, tenant uuid.UUID, rule CompiledRule, from, to time.Time) (BacktestResult, error) {
	times, err := BacktestTimes(from, to, rule.Interval)
	if err != nil {
		return BacktestResult{}, err
	}
	k, ok := Lookup(rule.Kind)
	if !ok {
		return BacktestResult{}, fmt.Errorf("backtest: no kind %q", rule.Kind)
	}
	var obs []observation
	err = b.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		if err := q.AlertEvalBegin(ctx); err != nil {
			return fmt.Errorf("begin the backtest: %w", err)
		}
		if b.timeout > 0 {
			if err := q.AlertRuleSetStatementTimeout(ctx, strconv.FormatInt(b.timeout.Milliseconds(), 10)); err != nil {
				return fmt.Errorf("set the statement timeout: %w", err)
			}
		}
		id, err := q.AlertRuleInsertForBacktest(ctx, dbsqlc.AlertRuleInsertForBacktestParams{TenantID: tenant,
			Name: "backtest " + uuid.NewString(), Kind: rule.Kind, ForSeconds: seconds(rule.For),
			IntervalSeconds: seconds(rule.Interval), Settings: rule.Compiled.Settings, Eval: rule.Eval})
		if err != nil {
			return fmt.Errorf("store the rule for the backtest: %w", err)
		}
		for chunk := range slices.Chunk(times, backtestChunk) {
			rows, err := k.Evaluate(ctx, q, []int64{id}, chunk)
			if err != nil {
				return fmt.Errorf("evaluate: %w", err)
			}
			o, err := decodeObservations(rows)
			if err != nil {
				return err
			}
			obs = append(obs, o...)
		}
		return errRolledBack
	})
	if !errors.Is(err, errRolledBack) {
		return BacktestResult{}, err
	}
	return simulate(rule, k, times, obs), nil
}

// simulate steps the decisions through the answers of a backtest's evaluations, in time order.
func simulate(rule CompiledRule, k Kind, times []time.Time, obs []observation) BacktestResult {
	byTime := map[time.Time][]observation{}
	for _, o := range obs {
		byTime[o.At.UTC()] = append(byTime[o.At.UTC()], o)
	}
	timing := Timing{For: rule.For, FlapChanges: math.MaxInt32, FlapWindow: time.Hour}
	higher := rule.Comparator != "<" && rule.Comparator != "<="
	type tracked struct {
		alert Alert
		open  int // the index of its open would-be alert in res.Alerts; -1 when none
		last  observation
	}
	things := map[string]*tracked{}
	res := BacktestResult{Evaluations: len(times), Alerts: []WouldBeAlert{}}
	var order []string
	for _, at := range times {
		seen := map[string]bool{}
		step := func(fp string, o observation, c Condition) {
			t := things[fp]
			if t == nil {
				t = &tracked{alert: Alert{State: Inactive}, open: -1}
				things[fp] = t
				order = append(order, fp)
			}
			out := Step(t.alert, c, timing, Mute{}, at)
			t.alert, t.last = out.Alert, o
			switch {
			case out.Alert.State == Firing && t.open < 0:
				labels := o.labels(rule.Labels)
				w := WouldBeAlert{Fingerprint: fp, Labels: labels, Start: at}
				if o.HostID != nil && o.HostName != nil {
					w.Host = &Ref{ID: *o.HostID, Name: *o.HostName}
				}
				if o.CheckID != nil && o.CheckName != nil {
					w.Check = &Ref{ID: *o.CheckID, Name: *o.CheckName}
				}
				if len(res.Alerts) >= maxBacktestAlerts {
					res.Truncated = true
					return
				}
				res.Alerts = append(res.Alerts, w)
				t.open = len(res.Alerts) - 1
			case out.Alert.State != Firing && t.open >= 0:
				end := at
				res.Alerts[t.open].End = &end
				t.open = -1
			}
			if t.open >= 0 && o.Value.Finite() != nil {
				v, w := *o.Value.Finite(), &res.Alerts[t.open]
				if w.Peak == nil || (higher && v > *w.Peak) || (!higher && v < *w.Peak) {
					w.Peak = &v
				}
			}
		}
		for _, o := range byTime[at.UTC()] {
			seen[o.Fingerprint] = true
			step(o.Fingerprint, o, Condition{Holds: o.Breach, Recovered: o.Recovered})
		}
		// Things the evaluation no longer answers, whose alert is open, recover (see Engine.observe).
		for _, fp := range order {
			if t := things[fp]; !seen[fp] && t.alert.State.Open() {
				o := t.last
				o.Value = Value{}
				if v := k.Unanswered(); v != nil {
					o.Value = ValueOf(*v)
				}
				step(fp, o, Condition{Recovered: true})
			}
		}
	}
	return res
}

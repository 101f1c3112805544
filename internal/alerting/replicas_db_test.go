package alerting

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// Two alerters on one database, claiming side by side in small batches at every tick: each evaluates a
// share of the rules, and every transition, event and notification happens exactly once.
func TestTwoAlertersEvaluateEachSlotOnce(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f := newFixture(t, flavor)
		ch := f.channel(f.tenant, "ops")
		const hosts = 60
		for i := range hosts {
			name := fmt.Sprintf("web-%02d", i)
			h := f.host(f.tenant, name, nil)
			s := f.series(f.tenant, h, name, "cpu", nil)
			a := 1 + i%5
			b := a + 3 + i%4
			f.curve(s, -time.Minute, 25*time.Minute, func(m float64) float64 {
				if (m > float64(a)-0.5 && m <= float64(b)-0.5) || (m > float64(b+3)-0.5 && m <= float64(b+6)-0.5) {
					return 99
				}
				return 10
			})
			r := spec(name, "threshold", `{"metric": "cpu", "host": "`+name+`", "window": "20s", "agg": "max", "comparator": ">", "threshold": 90}`)
			r.Channels = []int64{ch}
			f.rule(f.tenant, r)
		}
		engines := []*Engine{f.newEngine("alerter-a"), f.newEngine("alerter-b")}
		for _, e := range engines {
			e.cfg.Batch = 7
		}
		share := make([]int, len(engines))
		for m := 0; m <= 22; m++ {
			at := f.t0.Add(time.Duration(m) * time.Minute)
			f.clock.set(at)
			var wg sync.WaitGroup
			errs := make([]error, len(engines))
			for i, e := range engines {
				wg.Go(func() {
					for {
						n, err := e.RunOnce(f.ctx, &at)
						if err != nil {
							errs[i] = err
							return
						}
						if n == 0 {
							return
						}
						share[i] += n
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				f.must(err)
			}
		}
		if share[0] == 0 || share[1] == 0 || share[0]+share[1] != hosts*23 {
			t.Fatalf("evaluations per alerter %v, want both working and %d in all", share, hosts*23)
		}
		c := itoa(int(ch))
		var alerts int
		f.must(f.d.Pool.QueryRow(f.ctx, `SELECT count(*) FROM app.alerts`).Scan(&alerts))
		expect(t, "alerts", alerts, hosts)
		rows, err := f.d.Pool.Query(f.ctx, `SELECT id FROM app.alerts ORDER BY id`)
		f.must(err)
		var ids []int64
		for rows.Next() {
			var id int64
			f.must(rows.Scan(&id))
			ids = append(ids, id)
		}
		f.must(rows.Err())
		for _, id := range ids {
			expectSlice(t, fmt.Sprintf("history of alert %d", id), f.history(id),
				[]string{"inactive>firing", "firing>resolved", "resolved>firing", "firing>resolved"})
			expectSlice(t, fmt.Sprintf("notifications of alert %d", id), f.notifications(id),
				[]string{"firing@" + c, "resolved@" + c, "firing@" + c, "resolved@" + c})
		}
		t.Logf("evaluations: alerter a %d, alerter b %d", share[0], share[1])
	})
}

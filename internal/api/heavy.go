package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// HeavyReadLimits bound the reads that may hold a database connection for seconds — ranges of time
// series, the newest samples, series listings, the overview, log searches and check results — so that
// one tenant's dashboards cannot take the connections every other request needs: GET /hosts of another
// tenant then still finds one at once. A heavy read over a limit waits up to Wait for a slot, then
// answers 429 with Retry-After. The limits hold per process; a tenant's max_heavy_reads, when the
// operator set one, replaces PerTenant for that tenant.
type HeavyReadLimits struct {
	// PerTenant is how many heavy reads of one tenant run at once. Zero means 4, or a quarter of the
	// database pool when that is less (at least 1).
	PerTenant int
	// Total is how many heavy reads of all tenants run at once. Zero means half the database pool (at
	// least 1), so that the other half always serves light reads, writes and the process's own work.
	Total int
	// Wait is how long a heavy read waits for a slot before it is refused. Zero means 2 s.
	Wait time.Duration
}

// withDefaults fills the zero fields for a database pool of poolSize connections.
func (l HeavyReadLimits) withDefaults(poolSize int) HeavyReadLimits {
	if l.Total <= 0 {
		l.Total = max(1, poolSize/2)
	}
	if l.PerTenant <= 0 {
		l.PerTenant = max(1, min(4, poolSize/4))
	}
	if l.Wait <= 0 {
		l.Wait = DefaultConfig().HeavyReads.Wait
	}
	return l
}

// heavyGate hands out the slots of heavy reads: one of the tenant's and one of the process's.
type heavyGate struct {
	limits HeavyReadLimits
	total  chan struct{} // a value in it is a slot taken

	mu      sync.Mutex
	tenants map[uuid.UUID]*tenantSlots

	inFlight prometheus.Gauge
	refused  prometheus.Counter
}

// tenantSlots are one tenant's slots. users counts the reads holding or waiting for one, so that the
// entry goes once the tenant has none, and the map holds only tenants reading now.
type tenantSlots struct {
	slots chan struct{}
	users int
}

func newHeavyGate(limits HeavyReadLimits, reg prometheus.Registerer) *heavyGate {
	g := &heavyGate{limits: limits, total: make(chan struct{}, limits.Total), tenants: map[uuid.UUID]*tenantSlots{},
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "infrawatch_api_heavy_reads_in_flight",
			Help: "Heavy reads (ranges, log searches, check results, series) running now in this process."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_api_heavy_reads_refused_total",
			Help: "Heavy reads answered 429 because their tenant's or the process's slots stayed taken."}),
	}
	if reg != nil {
		reg.MustRegister(g.inFlight, g.refused)
	}
	return g
}

// perTenant is the tenant's share: its own max_heavy_reads, or the limits' PerTenant when it has none (0).
func (g *heavyGate) perTenant(own int) int {
	if own > 0 {
		return own
	}
	return g.limits.PerTenant
}

// acquire takes a slot of tenant and one of the process, waiting at most the limits' Wait for both;
// perTenant is the tenant's own share (its max_heavy_reads), 0 for the limits' PerTenant. It answers the
// function that gives them back, or false when none came in time or ctx ended.
//
// When the tenant's share changed, reads that start afterwards take slots of the new share, and those
// already running or waiting keep theirs until they end: for that moment the tenant may run up to both.
func (g *heavyGate) acquire(ctx context.Context, tenant uuid.UUID, perTenant int) (release func(), ok bool) {
	share := g.perTenant(perTenant)
	g.mu.Lock()
	ts := g.tenants[tenant]
	if ts == nil || cap(ts.slots) != share {
		ts = &tenantSlots{slots: make(chan struct{}, share)}
		g.tenants[tenant] = ts
	}
	ts.users++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		if ts.users--; ts.users == 0 && g.tenants[tenant] == ts {
			delete(g.tenants, tenant)
		}
		g.mu.Unlock()
	}

	timer := time.NewTimer(g.limits.Wait)
	defer timer.Stop()
	select {
	case ts.slots <- struct{}{}:
	case <-timer.C:
		leave()
		return nil, false
	case <-ctx.Done():
		leave()
		return nil, false
	}
	select {
	case g.total <- struct{}{}:
	case <-timer.C:
		<-ts.slots
		leave()
		return nil, false
	case <-ctx.Done():
		<-ts.slots
		leave()
		return nil, false
	}
	g.inFlight.Inc()
	return func() {
		g.inFlight.Dec()
		<-g.total
		<-ts.slots
		leave()
	}, true
}

// heavyRead is the middleware of the heavy read routes: it holds a slot for the request, or answers
// 429 with Retry-After when its tenant's share or the process's stays taken.
func (s *server) heavyRead(c *gin.Context) {
	p := principal(c)
	release, ok := s.heavy.acquire(c.Request.Context(), p.TenantID, p.Caps.MaxHeavyReads)
	if !ok {
		if c.Request.Context().Err() != nil {
			c.Abort() // the client went away while waiting
			return
		}
		s.heavy.refused.Inc()
		c.Header("Retry-After", "1")
		writeProblem(c, http.StatusTooManyRequests, "too many heavy reads",
			"heavy reads (ranges, log searches, check results, series) of this tenant or of this server are at their limit ("+
				strconv.Itoa(s.heavy.perTenant(p.Caps.MaxHeavyReads))+" at once for this tenant, "+strconv.Itoa(s.heavy.limits.Total)+" in all); retry after 1 s")
		return
	}
	defer release()
	c.Next()
}

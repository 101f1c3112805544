package ingest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// seriesKey identifies a series within a tenant: its name and its labels in sorted order, each string
// preceded by its length, so that no two different series share a key whatever bytes they hold.
func seriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	n := len(name) + 2
	for k, v := range labels {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	for _, k := range keys {
		v := labels[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return string(b)
}

// resolver maps series and hosts to their ids, from memory when it can and from the database (creating
// them) when it must. The cache only ever holds ids that exist: series are never deleted while a tenant
// lives.
type resolver struct {
	pool *pgxpool.Pool

	mu      sync.RWMutex
	series  map[uuid.UUID]map[string]int64
	entries int
	// count is each tenant's number of series as last read, for the series limit.
	count map[uuid.UUID]int64

	hostMu sync.Mutex
	hosts  map[hostKey]hostEntry
}

// maxCachedSeries bounds the cache; past it, the cache starts over and refills from the database.
const maxCachedSeries = 2_000_000

type hostKey struct {
	tenant uuid.UUID
	name   string
}

type hostEntry struct {
	id       int64
	markedAt time.Time
	details  string // the labels and metadata last written, so that an agent repeating them costs no write
}

// hostSeenInterval is how often a host's last_seen_at is written while it keeps pushing.
const hostSeenInterval = time.Minute

func newResolver(pool *pgxpool.Pool) *resolver {
	return &resolver{pool: pool, series: map[uuid.UUID]map[string]int64{}, count: map[uuid.UUID]int64{},
		hosts: map[hostKey]hostEntry{}}
}

// HostDetails is what a push may say about its host beyond the name.
type HostDetails struct {
	Labels   map[string]string
	Metadata map[string]any
}

// host returns the host's id, registering it on first sight and refreshing last_seen_at at most once
// a minute, or at once when the push carries labels or metadata that differ from the last ones written.
func (r *resolver) host(ctx context.Context, tenant uuid.UUID, name string, details *HostDetails) (int64, error) {
	params := dbsqlc.HostSeenParams{TenantID: tenant, Name: name}
	if details != nil {
		if details.Labels != nil {
			params.Labels, _ = json.Marshal(details.Labels)
		}
		if details.Metadata != nil {
			params.Metadata, _ = json.Marshal(details.Metadata)
		}
	}
	written := string(params.Labels) + "\x00" + string(params.Metadata)
	k := hostKey{tenant, name}
	r.hostMu.Lock()
	e, ok := r.hosts[k]
	r.hostMu.Unlock()
	if ok && time.Since(e.markedAt) < hostSeenInterval && (details == nil || written == e.details) {
		return e.id, nil
	}
	id, err := dbsqlc.New(r.pool).HostSeen(ctx, params)
	if err != nil {
		return 0, fmt.Errorf("register host %q: %w", name, err)
	}
	r.hostMu.Lock()
	if len(r.hosts) > 100_000 {
		r.hosts = map[hostKey]hostEntry{}
	}
	r.hosts[k] = hostEntry{id: id, markedAt: time.Now(), details: written}
	r.hostMu.Unlock()
	return id, nil
}

// pending is a series of one push that is not in the cache yet.
type pending struct {
	key    string
	name   string
	labels map[string]string
	hostID int64
}

// lookup returns the cached id of each key (0 when unknown).
func (r *resolver) lookup(tenant uuid.UUID, keys []string, ids []int64) {
	r.mu.RLock()
	m := r.series[tenant]
	for i, k := range keys {
		ids[i] = m[k]
	}
	r.mu.RUnlock()
}

// seriesCount is the tenant's number of series, read once and then kept up to date by resolve.
func (r *resolver) seriesCount(ctx context.Context, tenant uuid.UUID) (int64, error) {
	r.mu.RLock()
	n, ok := r.count[tenant]
	r.mu.RUnlock()
	if ok {
		return n, nil
	}
	n, err := dbsqlc.New(r.pool).SeriesCountByTenant(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("count series: %w", err)
	}
	r.mu.Lock()
	r.count[tenant] = n
	r.mu.Unlock()
	return n, nil
}

// resolve finds or creates the series of missing and returns their ids by key.
func (r *resolver) resolve(ctx context.Context, tenant uuid.UUID, missing []pending) (map[string]int64, error) {
	found := make(map[string]int64, len(missing))
	todo := missing
	for attempt := 0; len(todo) > 0 && attempt < 3; attempt++ {
		p := dbsqlc.SeriesResolveParams{TenantID: tenant, Names: make([]string, len(todo)),
			Labels: make([][]byte, len(todo)), HostIds: make([]int64, len(todo))}
		for i, s := range todo {
			p.Names[i], p.HostIds[i] = s.name, s.hostID
			p.Labels[i], _ = json.Marshal(s.labels)
		}
		rows, err := dbsqlc.New(r.pool).SeriesResolve(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("resolve series: %w", err)
		}
		for _, row := range rows {
			var labels map[string]string
			if err := json.Unmarshal(row.Labels, &labels); err != nil {
				return nil, fmt.Errorf("resolve series: labels of series %d: %w", row.ID, err)
			}
			k := seriesKey(row.Name, labels)
			if _, seen := found[k]; !seen {
				found[k] = row.ID
			}
		}
		// Series a concurrent transaction created after our statement began are not in its answer: ask again.
		var again []pending
		for _, s := range todo {
			if _, ok := found[s.key]; !ok {
				again = append(again, s)
			}
		}
		todo = again
	}
	if len(todo) > 0 {
		return nil, fmt.Errorf("resolve series: %d series still unresolved after retries", len(todo))
	}
	r.mu.Lock()
	if r.entries+len(found) > maxCachedSeries {
		r.series, r.entries = map[uuid.UUID]map[string]int64{}, 0
	}
	m := r.series[tenant]
	if m == nil {
		m = map[string]int64{}
		r.series[tenant] = m
	}
	for k, id := range found {
		if _, ok := m[k]; !ok {
			m[k] = id
			r.entries++
		}
	}
	delete(r.count, tenant) // re-read on the next limit check
	r.mu.Unlock()
	return found, nil
}

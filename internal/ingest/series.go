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
	"github.com/jackc/pgx/v5"
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
// them) when it must. The series cache only ever holds ids that exist: series are never deleted while a
// tenant lives. A host can be deleted (or renamed) through the API while its id is cached; the cache is
// never trusted where an id is stored: new series take their host's id in their own transaction, and log
// lines check theirs (Service.WriteLogs).
type resolver struct {
	pool *pgxpool.Pool

	mu      sync.RWMutex
	series  map[uuid.UUID]map[string]int64
	entries int

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
	return &resolver{pool: pool, series: map[uuid.UUID]map[string]int64{}, hosts: map[hostKey]hostEntry{}}
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

// forgetHost drops a host from the cache when its cached id is found stale (the host was deleted or
// renamed), so that the next push registers it again with its labels and metadata.
func (r *resolver) forgetHost(tenant uuid.UUID, name string, staleID int64) {
	r.hostMu.Lock()
	if e, ok := r.hosts[hostKey{tenant, name}]; ok && e.id == staleID {
		delete(r.hosts, hostKey{tenant, name})
	}
	r.hostMu.Unlock()
}

// pending is a series of one push that is not in the cache yet.
type pending struct {
	key    string
	name   string
	labels map[string]string
	host   string // the name of the series' host, empty for none
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

// resolve finds the series of missing, creating the new ones as far as the tenant's limit of maxSeries
// allows, and returns their ids by key. A series missing from the answer was refused by the limit.
//
// Most series missing from the cache exist (this process restarted, or another one created them): they
// are found first without a lock. The others are created under the tenant's series count lock, so that
// concurrent pushes, in this process or another, never pass the limit together.
func (r *resolver) resolve(ctx context.Context, tenant uuid.UUID, maxSeries int64, missing []pending) (map[string]int64, error) {
	found := make(map[string]int64, len(missing))
	if err := r.lookupStored(ctx, tenant, missing, found); err != nil {
		return nil, err
	}
	todo := missing
	for attempt := 0; attempt < 3; attempt++ {
		var left []pending
		for _, s := range todo {
			if _, ok := found[s.key]; !ok {
				left = append(left, s)
			}
		}
		if todo = left; len(todo) == 0 {
			break
		}
		full, err := r.create(ctx, tenant, maxSeries, todo, found)
		if err != nil {
			return nil, err
		}
		if full {
			todo = nil // the limit refuses what is left
			break
		}
		// Below the limit yet not created: a writer that does not take the lock (none in this code)
		// created them meanwhile. Ask again.
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
	r.mu.Unlock()
	return found, nil
}

// lookupStored adds the ids of those series of missing that exist to found.
func (r *resolver) lookupStored(ctx context.Context, tenant uuid.UUID, missing []pending, found map[string]int64) error {
	p := dbsqlc.SeriesLookupParams{TenantID: tenant, Names: make([]string, len(missing)), Labels: make([][]byte, len(missing))}
	for i, s := range missing {
		p.Names[i] = s.name
		p.Labels[i], _ = json.Marshal(s.labels)
	}
	rows, err := dbsqlc.New(r.pool).SeriesLookup(ctx, p)
	if err != nil {
		return fmt.Errorf("look up series: %w", err)
	}
	for _, row := range rows {
		found[seriesKey(row.Name, row.Labels)] = row.ID
	}
	return nil
}

// create creates the series of todo under the tenant's series count lock, at most as many as the limit
// leaves room for, in the order given, and adds the ids of those that exist once it commits to found.
// full reports that the limit left no room for the others.
func (r *resolver) create(ctx context.Context, tenant uuid.UUID, maxSeries int64, todo []pending, found map[string]int64) (full bool, err error) {
	created := map[string]int64{}
	var staleHosts map[string]int64
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		q := dbsqlc.New(tx)
		count, err := q.SeriesCountLock(ctx, tenant)
		if err != nil {
			return fmt.Errorf("lock the series count: %w", err)
		}
		room := max(maxSeries-count, 0)
		// Host ids are taken in this transaction, not from the cache: a host deleted through the API
		// since it was cached is registered again rather than referenced by its old id.
		hostIDs := map[string]int64{}
		p := dbsqlc.SeriesCreateParams{TenantID: tenant, MaxNew: room, Names: make([]string, len(todo)),
			Labels: make([][]byte, len(todo)), HostIds: make([]int64, len(todo))}
		for i, s := range todo {
			if s.host != "" {
				id, ok := hostIDs[s.host]
				if !ok {
					if id, err = q.HostSeen(ctx, dbsqlc.HostSeenParams{TenantID: tenant, Name: s.host}); err != nil {
						return fmt.Errorf("register host %q: %w", s.host, err)
					}
					hostIDs[s.host] = id
				}
				p.HostIds[i] = id
			}
			p.Names[i] = s.name
			p.Labels[i], _ = json.Marshal(s.labels)
		}
		rows, err := q.SeriesCreate(ctx, p)
		if err != nil {
			return fmt.Errorf("create series: %w", err)
		}
		made := int64(0)
		for _, row := range rows {
			var labels map[string]string
			if err := json.Unmarshal(row.Labels, &labels); err != nil {
				return fmt.Errorf("create series: labels of series %d: %w", row.ID, err)
			}
			created[seriesKey(row.Name, labels)] = row.ID
			if row.Created {
				made++
			}
		}
		full = made >= room
		for name, id := range hostIDs {
			if cached, ok := r.cachedHost(tenant, name); ok && cached != id {
				if staleHosts == nil {
					staleHosts = map[string]int64{}
				}
				staleHosts[name] = cached
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for name, id := range staleHosts {
		r.forgetHost(tenant, name, id)
	}
	for k, id := range created {
		found[k] = id
	}
	return full, nil
}

// cachedHost returns the id cached for a host, if any.
func (r *resolver) cachedHost(tenant uuid.UUID, name string) (int64, bool) {
	r.hostMu.Lock()
	defer r.hostMu.Unlock()
	e, ok := r.hosts[hostKey{tenant, name}]
	return e.id, ok
}

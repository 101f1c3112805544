package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// getWithin sends GET path with a bearer credential and answers what came, or an error when ctx ended first.
func (w *world) getWithin(ctx context.Context, path, credential string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", w.srv.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.json)
	return r, err
}

// mustGetWithin is getWithin that fails the test when no answer comes within the hang guard.
func (w *world) mustGetWithin(t *testing.T, what, path, credential string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	got, err := w.getWithin(ctx, path, credential)
	if err != nil {
		t.Fatalf("%s (GET %s): no answer: %v", what, path, err)
	}
	return got
}

// lockTables takes ACCESS EXCLUSIVE locks on tables in a transaction of the owner, so that every read
// of them waits, holding its connection, until the returned function releases them.
func lockTables(t *testing.T, w *world, tables ...string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := w.d.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = tx.Rollback(ctx)
		}
	}
	t.Cleanup(release)
	return release
}

// Every tenant-facing read is bounded by the statement timeout, the query API's and the others alike,
// and a read past it answers 422 saying so: here log search and check results wait for locks held.
func TestTenantReadsStopAtTheStatementTimeout(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldCustom(t, flavor, testLimits, func(d *api.Deps) {
			d.Tenants = d.Tenants.WithStatementTimeout(200 * time.Millisecond)
		})
		check := w.createCheck(t, w.a, "web")
		release := lockTables(t, w, "ts.logs", "ts.check_results")
		viewer := w.a.tokens["viewer"]
		for _, path := range []string{"/api/v1/logs?q=timed+out", fmt.Sprintf("/api/v1/checks/%d/results", check)} {
			got := w.mustGetWithin(t, "a read waiting for a lock", path, viewer)
			if got.status != http.StatusUnprocessableEntity || got.str("title") != "query timed out" ||
				!strings.Contains(got.str("detail"), "200ms") {
				t.Errorf("GET %s past the statement timeout: %d %s, want 422 query timed out naming the limit", path, got.status, got.raw)
			}
		}
		release()
		w.call(t, "GET", "/api/v1/logs?q=timed+out", viewer, nil).must(t, http.StatusOK)
	})
}

// One tenant's heavy reads cannot take the database pool from the others: beyond its share they are
// refused with 429 and Retry-After, while another tenant's light reads and heavy reads still run. The
// share is held here by log searches waiting for a lock the test holds on ts.logs.
func TestHeavyReadsOfOneTenantLeaveRoomForOthers(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		// The test pool has 4 connections: 2 heavy reads per tenant, 3 in all, leave one for light reads.
		w := newWorldCustom(t, flavor, testLimits, func(d *api.Deps) {
			d.Config.HeavyReads = api.HeavyReadLimits{PerTenant: 2, Total: 3, Wait: 50 * time.Millisecond}
			d.Tenants = d.Tenants.WithStatementTimeout(time.Minute) // the lock is held as long as the test needs
		})
		if n := w.d.Pool.Config().MaxConns; n != 4 {
			t.Fatalf("the test pool has %d connections; this test assumes 4", n)
		}
		w.pushLogs(t, w.a, "web-1", []map[string]any{{"time": time.Now().Add(-time.Minute).UnixMilli(), "message": "hello"}})
		bSeries := w.pushSample(t, w.b, "cpu", time.Now().Add(-time.Minute), 1) // and B's host web-1
		aViewer, bViewer := w.a.tokens["viewer"], w.b.tokens["viewer"]

		release := lockTables(t, w, "ts.logs")
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		const searches = 4 // as many as the pool has connections
		answers := make(chan response, searches)
		for range searches {
			go func() {
				got, err := w.getWithin(ctx, "/api/v1/logs?q=hello", aViewer)
				if err != nil {
					got = response{raw: err.Error()}
				}
				answers <- got
			}()
		}
		// Two searches take A's share and wait for the lock; the other two are refused.
		for i := range searches - 2 {
			select {
			case got := <-answers:
				if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" ||
					got.header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("A's log search %d beyond its share: %d %v %s, want 429 problem with Retry-After", i+1, got.status, got.header, got.raw)
				}
			case <-ctx.Done():
				t.Fatalf("A's log searches beyond its share: %d of %d answered, want them refused at once", i, searches-2)
			}
		}

		// B is not held up: a light read and a heavy read of its own both answer.
		hosts := w.mustGetWithin(t, "B's host list", "/api/v1/hosts", bViewer)
		if hosts.status != http.StatusOK || !strings.Contains(hosts.raw, `"name":"web-1"`) {
			t.Errorf("B's GET /hosts while A's searches wait: %d %s", hosts.status, hosts.raw)
		}
		series := w.mustGetWithin(t, "B's series list", "/api/v1/series", bViewer)
		if series.status != http.StatusOK || !strings.Contains(series.raw, fmt.Sprintf(`"id":%d`, bSeries)) {
			t.Errorf("B's GET /series while A's searches wait: %d %s", series.status, series.raw)
		}
		if got := w.mustGetWithin(t, "A's next heavy read", "/api/v1/series", aViewer); got.status != http.StatusTooManyRequests {
			t.Errorf("A's GET /series while its share is taken: %d %s, want 429", got.status, got.raw)
		}

		// Once the lock goes, the waiting searches answer in full, and A reads again.
		release()
		for range 2 {
			select {
			case got := <-answers:
				if got.status != http.StatusOK || !strings.Contains(got.raw, `"message":"hello"`) {
					t.Errorf("A's waiting log search after the lock went: %d %s", got.status, got.raw)
				}
			case <-ctx.Done():
				t.Fatal("A's waiting log searches never answered")
			}
		}
		w.call(t, "GET", "/api/v1/logs?q=hello", aViewer, nil).must(t, http.StatusOK)
	})
}

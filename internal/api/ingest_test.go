package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// ingestKey creates an API key with the ingest scope for tw.
func (w *world) ingestKey(t *testing.T, tw *tenantWorld) string {
	t.Helper()
	return w.call(t, "POST", "/api/v1/api-keys", tw.tokens["admin"], map[string]any{"name": "agent", "scopes": []string{"ingest"}}).
		must(t, http.StatusCreated).str("key")
}

// raw posts a body with headers and a bearer key.
func (w *world) raw(t *testing.T, path, key string, body []byte, headers ...string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", w.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = decodeJSON(bytes.NewReader(raw), &r.json)
	return r
}

type storedSample struct {
	tenant, host, name, labels string
	ms                         int64
	value                      float64
}

// samples reads every stored sample with its series, as the owner.
func (w *world) samples(t *testing.T) []storedSample {
	t.Helper()
	rows, err := w.d.Pool.Query(context.Background(), `
		SELECT s.tenant_id::text, coalesce(h.name, ''), r.name, r.labels::text, (extract(epoch FROM s.time) * 1000)::bigint, s.value
		  FROM ts.samples s JOIN app.series r ON r.id = s.series_id LEFT JOIN app.hosts h ON h.id = r.host_id
		 ORDER BY 1, 3, 4, 5`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedSample
	for rows.Next() {
		var s storedSample
		if err := rows.Scan(&s.tenant, &s.host, &s.name, &s.labels, &s.ms, &s.value); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestIngestJSONStoresForTheKeysTenant(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		now := time.Now().Truncate(time.Second).UnixMilli()
		body := fmt.Sprintf(`{"host": {"name": "web-1", "labels": {"env": "prod"}},
			"metrics": [{"name": "cpu.usage_pct", "labels": {"cpu": "total"}, "points": [[%d, 12.5], [%d, 13.0]]},
			            {"name": "mem.used_bytes", "points": [[%d, 1e9], ["soon", 1], [%d, 7, 8]]}],
			"tenant_id": "%s"}`, now-10000, now, now, now, w.b.id)
		// A tenant_id in the payload is not a field at all: the body is refused, never written to B.
		if got := w.raw(t, "/api/v1/ingest", key, []byte(body)); got.status != http.StatusBadRequest {
			t.Fatalf("a body with tenant_id: %d %s", got.status, got.raw)
		}
		body = strings.Replace(body, fmt.Sprintf(`,
			"tenant_id": "%s"`, w.b.id), "", 1)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(body))
		zw.Close()
		got := w.raw(t, "/api/v1/ingest", key, gz.Bytes(), "Content-Encoding", "gzip", "Content-Type", "application/json").must(t, http.StatusOK)
		if got.json["accepted"] != 3.0 || !strings.Contains(got.raw, `"metric":1,"point":1`) || !strings.Contains(got.raw, `"metric":1,"point":2`) {
			t.Fatalf("answer %s", got.raw)
		}
		stored := w.samples(t)
		if len(stored) != 3 {
			t.Fatalf("stored %d samples, want 3: %+v", len(stored), stored)
		}
		for _, s := range stored {
			if s.tenant != w.a.id.String() || s.host != "web-1" || !strings.Contains(s.labels, `"host": "web-1"`) {
				t.Errorf("stored %+v, want tenant A, host web-1", s)
			}
		}
		if stored[0].name != "cpu.usage_pct" || stored[0].value != 12.5 || stored[0].ms != now-10000 ||
			!strings.Contains(stored[0].labels, `"cpu": "total"`) {
			t.Errorf("first sample %+v", stored[0])
		}

		// A retry of the same push stores nothing twice.
		w.raw(t, "/api/v1/ingest", key, gz.Bytes(), "Content-Encoding", "gzip").must(t, http.StatusOK)
		if n := len(w.samples(t)); n != 3 {
			t.Fatalf("after a retry: %d samples, want 3", n)
		}
		// Self-metrics count what was stored and refused, and the writer's batches.
		metrics := w.call(t, "GET", "/metrics", "", nil).must(t, http.StatusOK).raw
		for _, want := range []string{`infrawatch_ingest_samples_accepted_total{protocol="json"} 6`,
			`infrawatch_ingest_samples_rejected_total{reason="malformed"} 4`, "infrawatch_ingest_batch_rows_count",
			"infrawatch_ingest_commit_seconds_bucket", "infrawatch_ingest_queue_rows", "infrawatch_ingest_duplicate_batches_total 1"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		// The host was registered with its labels.
		hosts := w.call(t, "GET", "/api/v1/hosts", w.a.tokens["viewer"], nil).must(t, http.StatusOK)
		if !strings.Contains(hosts.raw, `"name":"web-1"`) || !strings.Contains(hosts.raw, `"env":"prod"`) || strings.Contains(hosts.raw, `"last_seen_at":null`) {
			t.Errorf("hosts %s", hosts.raw)
		}
		if other := w.call(t, "GET", "/api/v1/hosts", w.b.tokens["viewer"], nil).must(t, http.StatusOK); strings.Contains(other.raw, "web-1") {
			t.Errorf("tenant B sees A's host")
		}
	})
}

func TestIngestRefusesBadInputPrecisely(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	now := time.Now().UnixMilli()
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed", `{"metrics": [`, 400, "malformed"},
		{"unknown field", `{"metrics": [], "extra": 1}`, 400, "extra"},
		{"too old", fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d, 1]]}]}`, now-31*24*3600*1000), 400, "older than the raw retention"},
		{"too new", fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d, 1]]}]}`, now+11*60*1000), 400, "ahead of the server clock"},
		{"9 minutes ahead is fine", fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d, 1]]}]}`, now+9*60*1000), 200, `"accepted":1`},
		{"empty name", fmt.Sprintf(`{"metrics": [{"name": "", "points": [[%d, 1]]}]}`, now), 400, "metric name is empty"},
		{"too many labels", fmt.Sprintf(`{"metrics": [{"name": "m", "labels": {%s}, "points": [[%d, 1]]}]}`, manyLabels(31), now), 400,
			"exceeds the limit (actual: 31, limit: 30)"},
		{"long label value", fmt.Sprintf(`{"metrics": [{"name": "m", "labels": {"k": "%s"}, "points": [[%d, 1]]}]}`,
			strings.Repeat("v", 2049), now), 400, "longer than 2048 bytes"},
		{"fractional timestamp", fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d.5, 1]]}]}`, now), 400, "not an integer"},
		{"no metrics", `{"metrics": []}`, 400, "no item"},
		{"host without name", `{"host": {"labels": {}}, "metrics": []}`, 400, "host.name"},
	}
	for _, c := range cases {
		got := w.raw(t, "/api/v1/ingest", key, []byte(c.body))
		if got.status != c.status || !strings.Contains(got.raw, c.want) {
			t.Errorf("%s: %d %s, want %d containing %q", c.name, got.status, got.raw, c.status, c.want)
		}
	}
	// A gzip bomb stops at the decoded limit.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 40 {
		zw.Write(zeros)
	}
	zw.Close()
	if got := w.raw(t, "/api/v1/ingest", key, bomb.Bytes(), "Content-Encoding", "gzip"); got.status != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip bomb (%d bytes, 40 MiB decoded): %d", bomb.Len(), got.status)
	}
	// Only the ingest permission writes: a read key cannot.
	readKey := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["admin"], map[string]any{"name": "r", "scopes": []string{"read"}}).
		must(t, http.StatusCreated).str("key")
	w.raw(t, "/api/v1/ingest", readKey, []byte(`{"metrics": []}`)).must(t, http.StatusForbidden)
}

func manyLabels(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"l%d": "v"`, i)
	}
	return strings.Join(parts, ",")
}

func TestIngestSeriesLimitAndRateLimit(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	ctx := context.Background()
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.tenants SET max_series = 3, ingest_rate = 10, ingest_burst = 50 WHERE id = $1`, w.a.id); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	var metrics []string
	for i := range 5 {
		metrics = append(metrics, fmt.Sprintf(`{"name": "m%d", "points": [[%d, 1]]}`, i, now))
	}
	got := w.raw(t, "/api/v1/ingest", key, []byte(`{"metrics": [`+strings.Join(metrics, ",")+`]}`)).must(t, http.StatusOK)
	if got.json["accepted"] != 3.0 || strings.Count(got.raw, "series limit is reached") != 2 {
		t.Fatalf("5 new series against a limit of 3: %s", got.raw)
	}
	// Known series still take samples.
	w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"metrics": [{"name": "m0", "points": [[%d, 2]]}]}`, now-1000))).must(t, http.StatusOK)

	// 60 samples at once exceed a burst of 50: they never could pass, so 413, nothing stored.
	var points []string
	for i := range 60 {
		points = append(points, fmt.Sprintf("[%d, %d]", now-int64(i+10)*1000, i))
	}
	big := w.raw(t, "/api/v1/ingest", key, []byte(`{"metrics": [{"name": "m1", "points": [`+strings.Join(points, ",")+`]}]}`))
	if big.status != http.StatusRequestEntityTooLarge || !strings.Contains(big.raw, "burst of 50") {
		t.Fatalf("over the burst: %d %s", big.status, big.raw)
	}
	// 40 fit what is left of the burst; 40 more right after exceed the rate: 429 with Retry-After.
	part := `{"metrics": [{"name": "m1", "points": [` + strings.Join(points[:40], ",") + `]}]}`
	w.raw(t, "/api/v1/ingest", key, []byte(part)).must(t, http.StatusOK)
	again := w.raw(t, "/api/v1/ingest", key, []byte(`{"metrics": [{"name": "m2", "points": [`+strings.Join(points[:40], ",")+`]}]}`))
	if again.status != http.StatusTooManyRequests || again.header.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d %s", again.status, again.raw)
	}
}

func TestLogsIngestAndSearch(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		now := time.Now().UnixMilli()
		body := fmt.Sprintf(`{"host": {"name": "web-1"}, "entries": [
			{"time": %d, "source": "nginx", "severity": "warn", "message": "upstream timed out", "attributes": {"status": 504}},
			{"time": %d, "source": "nginx", "severity": "info", "message": "GET /health 200"},
			{"time": %d, "source": "kernel", "severity": "err", "message": "disk sda: I/O error 100%% _bad_"},
			{"time": %d, "severity": "loud", "message": "bad severity"}]}`, now-3000, now-2000, now-1000, now)
		got := w.raw(t, "/api/v1/logs", key, []byte(body)).must(t, http.StatusOK)
		if got.json["accepted"] != 3.0 || !strings.Contains(got.raw, "severity") {
			t.Fatalf("logs push: %s", got.raw)
		}
		// Tenant B pushes a line too, which A must never see.
		w.raw(t, "/api/v1/logs", w.ingestKey(t, w.b), []byte(fmt.Sprintf(`{"entries": [{"time": %d, "message": "B's secret"}]}`, now))).
			must(t, http.StatusOK)

		viewer := w.a.tokens["viewer"]
		all := w.call(t, "GET", "/api/v1/logs", viewer, nil).must(t, http.StatusOK)
		items := all.json["items"].([]any)
		if len(items) != 3 || items[0].(map[string]any)["severity"] != "error" || strings.Contains(all.raw, "B's secret") {
			t.Fatalf("search: %s", all.raw)
		}
		for query, want := range map[string]int{
			"?severity=warning,error":         2,
			"?q=timed+out":                    1,
			"?q=100%25+_bad_":                 1, // % and _ match literally
			"?q=100%25x":                      0,
			"?host=web-1&severity=info":       1,
			"?host=web-2":                     0,
			fmt.Sprintf("?from=%d", now-1500): 1,
			"?limit=2":                        2,
		} {
			got := w.call(t, "GET", "/api/v1/logs"+query, viewer, nil).must(t, http.StatusOK)
			if n := len(got.json["items"].([]any)); n != want {
				t.Errorf("logs%s: %d lines, want %d: %s", query, n, want, got.raw)
			}
		}
		first := w.call(t, "GET", "/api/v1/logs?limit=2", viewer, nil).must(t, http.StatusOK)
		next := w.call(t, "GET", "/api/v1/logs?limit=2&cursor="+first.json["next_cursor"].(string), viewer, nil).must(t, http.StatusOK)
		if items := next.json["items"].([]any); len(items) != 1 || !strings.Contains(next.raw, "upstream timed out") {
			t.Errorf("second page: %s", next.raw)
		}
		w.call(t, "GET", "/api/v1/logs?severity=loud", viewer, nil).must(t, http.StatusBadRequest)
		w.call(t, "GET", "/api/v1/logs?from=yesterday", viewer, nil).must(t, http.StatusBadRequest)
	})
}

func TestIngestInfluxLineProtocol(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		now := time.Now().Truncate(time.Second)
		lines := fmt.Sprintf("cpu,host=web-1,cpu=cpu0 usage_idle=98.5,usage_user=1.25 %d\n"+
			"mem,host=web-1 used=4096i %d\n", now.UnixNano(), now.Add(-time.Second).UnixNano())

		// v2: what Telegraf's influxdb_v2 output sends, Authorization: Token.
		req, _ := http.NewRequest("POST", w.srv.URL+"/api/v2/write?org=any&bucket=any&precision=ns", strings.NewReader(lines))
		req.Header.Set("Authorization", "Token "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("v2 write: %s", resp.Status)
		}
		// v1 with seconds precision and basic auth (any user name, the key as password).
		req, _ = http.NewRequest("POST", w.srv.URL+"/api/v1/write?db=telegraf&precision=s",
			strings.NewReader(fmt.Sprintf("disk,host=db-1,path=/ used_percent=71.5 %d\n", now.Unix())))
		req.SetBasicAuth("telegraf", key)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("v1 write: %s", resp.Status)
		}

		got := map[string]storedSample{}
		for _, s := range w.samples(t) {
			got[s.name] = s
		}
		want := map[string]struct {
			host  string
			value float64
			ms    int64
		}{
			"cpu.usage_idle":    {"web-1", 98.5, now.UnixMilli()},
			"cpu.usage_user":    {"web-1", 1.25, now.UnixMilli()},
			"mem.used":          {"web-1", 4096, now.Add(-time.Second).UnixMilli()},
			"disk.used_percent": {"db-1", 71.5, now.UnixMilli()},
		}
		if len(got) != len(want) {
			t.Fatalf("stored %v", got)
		}
		for name, w0 := range want {
			s := got[name]
			if s.host != w0.host || s.value != w0.value || s.ms != w0.ms || s.tenant != w.a.id.String() {
				t.Errorf("%s stored as %+v, want %+v in tenant A", name, s, w0)
			}
		}
		if !strings.Contains(got["cpu.usage_idle"].labels, `"cpu": "cpu0"`) || !strings.Contains(got["disk.used_percent"].labels, `"path": "/"`) {
			t.Errorf("tags did not become labels: %+v", got)
		}
		// A partial write: the valid line is stored, the bad one named.
		bad := w.raw(t, "/api/v2/write", key, []byte(fmt.Sprintf("ok value=1 %d\nbroken,host=x\nlog msg=\"text\" %d\n",
			now.UnixNano(), now.UnixNano())))
		if bad.status != http.StatusBadRequest || !strings.Contains(bad.raw, "partial write") || !strings.Contains(bad.raw, "line 2") {
			t.Errorf("partial write: %d %s", bad.status, bad.raw)
		}
		if _, ok := func() (storedSample, bool) {
			for _, s := range w.samples(t) {
				if s.name == "ok" {
					return s, true
				}
			}
			return storedSample{}, false
		}(); !ok {
			t.Error("the valid line of a partial write was not stored")
		}
		if got := w.raw(t, "/api/v2/write?precision=fortnights", key, []byte("m value=1")); got.status != http.StatusBadRequest ||
			!strings.Contains(got.raw, "precision") {
			t.Errorf("bad precision: %d %s", got.status, got.raw)
		}
	})
}

package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/agent"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/ingest"
)

// names reports whether a problem answer lists field among its errors.
func (r response) names(field string) bool { return strings.Contains(r.raw, `"field":"`+field+`"`) }

// storedLogs reads the messages of tenant's stored log lines, oldest first, with the name of their host.
func (w *world) storedLogs(t *testing.T, tw *tenantWorld) []string {
	t.Helper()
	rows, err := w.d.Pool.Query(context.Background(), `
		SELECT coalesce(h.name, '-') || ': ' || l.message FROM ts.logs l LEFT JOIN app.hosts h ON h.id = l.host_id
		 WHERE l.tenant_id = $1 ORDER BY l.time`, tw.id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// A NUL (\u0000) in a log line's message, source or attributes refuses that entry alone, with a reason
// naming it; the other entries are stored. A NUL in the host's name, labels or metadata refuses the push
// with a 400 naming the field. None of it is a 500, which the agent would retry for ever.
func TestPushesWithNULAreRefusedByEntry(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	now := time.Now().UnixMilli()
	body := fmt.Sprintf(`{"host": {"name": "web-1"}, "entries": [
		{"time": %d, "message": "fine"},
		{"time": %d, "message": "nul \u0000 inside"},
		{"time": %d, "source": "s\u0000", "message": "bad source"},
		{"time": %d, "message": "bad attribute value", "attributes": {"k": "v\u0000"}},
		{"time": %d, "message": "bad attribute key", "attributes": {"k\u0000": "v"}},
		{"time": %d, "message": "deep", "attributes": {"k": {"deeper": ["\u0000"]}}}]}`, now-6, now-5, now-4, now-3, now-2, now-1)
	got := w.raw(t, "/api/v1/logs", key, []byte(body)).must(t, http.StatusOK)
	if got.json["accepted"] != 1.0 {
		t.Fatalf("accepted: %s", got.raw)
	}
	for i := 1; i <= 5; i++ {
		if !strings.Contains(got.raw, fmt.Sprintf(`"reason":"entry %d: `, i)) {
			t.Errorf("entry %d is not named among the rejections: %s", i, got.raw)
		}
	}
	if stored := w.storedLogs(t, w.a); len(stored) != 1 || stored[0] != "web-1: fine" {
		t.Fatalf("stored %q, want only the fine line", stored)
	}
	// Only bad entries: 400 naming each.
	allBad := w.raw(t, "/api/v1/logs", key, []byte(fmt.Sprintf(`{"entries": [{"time": %d, "message": "\u0000"}]}`, now)))
	if allBad.status != http.StatusBadRequest || !allBad.names("entries[0]") {
		t.Errorf("a push of one bad entry: %d %s", allBad.status, allBad.raw)
	}

	metric := fmt.Sprintf(`"metrics": [{"name": "m", "points": [[%d, 1]]}]`, now)
	entry := fmt.Sprintf(`"entries": [{"time": %d, "message": "m"}]`, now)
	for _, c := range []struct{ host, field string }{
		{`{"name": "web\u0000"}`, "host.name"},
		{`{"name": "web-1", "labels": {"env": "prod\u0000"}}`, "host.labels.env"},
		{`{"name": "web-1", "labels": {"env\u0000": "prod"}}`, "host.labels"},
		{`{"name": "web-1", "metadata": {"os": "linux\u0000"}}`, "host.metadata.os"},
		{`{"name": "web-1", "metadata": {"os": {"kernel": ["6.1\u0000"]}}}`, "host.metadata.os"},
	} {
		for path, rest := range map[string]string{"/api/v1/ingest": metric, "/api/v1/logs": entry} {
			got := w.raw(t, path, key, []byte(`{"host": `+c.host+`, `+rest+`}`))
			if got.status != http.StatusBadRequest || !got.names(c.field) {
				t.Errorf("%s with host %s: %d %s, want 400 naming %s", path, c.host, got.status, got.raw, c.field)
			}
		}
	}
	if stored := w.storedLogs(t, w.a); len(stored) != 1 {
		t.Errorf("refused pushes stored lines: %q", stored)
	}
	if n := len(w.samples(t)); n != 0 {
		t.Errorf("refused pushes stored %d samples", n)
	}
	var labels, metadata string
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT labels::text, metadata::text FROM app.hosts WHERE tenant_id = $1 AND name = 'web-1'`,
		w.a.id).Scan(&labels, &metadata); err != nil || labels != "{}" || metadata != "{}" {
		t.Errorf("host web-1 has labels %s and metadata %s (%v), want both untouched", labels, metadata, err)
	}
}

// Host labels and metadata are bounded per host and so per push: number of keys, length of keys and
// values, total size. Beyond, the push is refused with a 400 naming the field, and the stored host keeps
// what it had.
func TestHostLabelsAndMetadataAreBounded(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	now := time.Now().UnixMilli()
	metric := fmt.Sprintf(`"metrics": [{"name": "m", "points": [[%d, 1]]}]`, now)
	entry := fmt.Sprintf(`"entries": [{"time": %d, "message": "m"}]`, now)
	w.raw(t, "/api/v1/ingest", key, []byte(`{"host": {"name": "web-1", "labels": {"env": "prod"}, "metadata": {"os": "linux"}}, `+metric+`}`)).
		must(t, http.StatusOK)

	entries := func(n int, keyLen, valueLen int) string {
		parts := make([]string, n)
		for i := range parts {
			k := fmt.Sprintf("k%d", i)
			k += strings.Repeat("k", max(keyLen-len(k), 0))
			parts[i] = fmt.Sprintf(`%q: %q`, k, strings.Repeat("v", valueLen))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	cases := []struct {
		name, host, field string
	}{
		{"a 5 KB metadata value", `"metadata": {"blob": "` + strings.Repeat("x", 5000) + `"}`, "host.metadata.blob"},
		{"a 12 MiB metadata value", `"metadata": {"blob": "` + strings.Repeat("x", 12<<20) + `"}`, "host.metadata.blob"},
		{"65 metadata keys", `"metadata": ` + entries(65, 2, 1), "host.metadata"},
		{"a 129-byte metadata key", `"metadata": ` + entries(1, 129, 1), "host.metadata"},
		{"80 KB of metadata in all", `"metadata": ` + entries(20, 8, 4000), "host.metadata"},
		{"a 5 KB nested metadata value", `"metadata": {"nested": {"a": ["` + strings.Repeat("x", 5000) + `"]}}`, "host.metadata.nested"},
		{"31 labels", `"labels": ` + entries(31, 2, 1), "host.labels"},
		{"a 129-byte label name", `"labels": ` + entries(1, 129, 1), "host.labels"},
		{"a 1025-byte label value", `"labels": {"env": "` + strings.Repeat("v", 1025) + `"}`, "host.labels.env"},
	}
	for _, c := range cases {
		for path, rest := range map[string]string{"/api/v1/ingest": metric, "/api/v1/logs": entry} {
			got := w.raw(t, path, key, []byte(`{"host": {"name": "web-1", `+c.host+`}, `+rest+`}`))
			if got.status != http.StatusBadRequest || !got.names(c.field) {
				t.Errorf("%s on %s: %d %.300s, want 400 naming %s", c.name, path, got.status, got.raw, c.field)
			}
		}
	}
	// At the limits: accepted.
	w.raw(t, "/api/v1/ingest", key, []byte(`{"host": {"name": "web-1", "labels": `+entries(30, 128, 1024)+
		`, "metadata": `+entries(15, 128, 4000)+`}, `+metric+`}`)).must(t, http.StatusOK)
	hosts := w.call(t, "GET", "/api/v1/hosts", w.a.tokens["viewer"], nil).must(t, http.StatusOK)
	if len(hosts.raw) > 200_000 || !strings.Contains(hosts.raw, strings.Repeat("v", 4000)) {
		t.Errorf("GET /hosts answered %d bytes", len(hosts.raw))
	}
}

// Names are validated as the columns hold them, one series at a time: a metric name over 1,024
// characters or a host name over 255 refuses that series, and the rest of the push is stored.
func TestNamesAreValidatedLikeTheColumns(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	now := time.Now().UnixMilli()
	long := strings.Repeat("n", 1025)
	got := w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"metrics": [{"name": "ok", "points": [[%d, 1]]},
		{"name": "%s", "points": [[%d, 1]]}, {"name": "%s", "points": [[%d, 1]]}]}`, now, long, now, strings.Repeat("é", 1024), now)))
	got.must(t, http.StatusOK)
	if got.json["accepted"] != 2.0 || !strings.Contains(got.raw, `"metric":1,"point":-1`) || !strings.Contains(got.raw, "1024 characters") {
		t.Errorf("a 1025-byte metric name among good ones: %s", got.raw)
	}
	// A host name over 255 characters names the field.
	got = w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"host": {"name": "%s"}, "metrics": [{"name": "ok", "points": [[%d, 1]]}]}`,
		strings.Repeat("h", 256), now)))
	if got.status != http.StatusBadRequest || !got.names("host.name") {
		t.Errorf("a 256-character host name: %d %s", got.status, got.raw)
	}
	// Line protocol: the line whose host tag is too long is refused, the other one stored.
	lp := fmt.Sprintf("cpu,host=%s usage=1 %d\ncpu,host=web-2 usage=2 %d\n", strings.Repeat("h", 300), now*1e6, now*1e6)
	got = w.raw(t, "/api/v2/write", key, []byte(lp))
	if got.status != http.StatusBadRequest || !strings.Contains(got.raw, "255 characters") {
		t.Errorf("line protocol with a 300-character host: %d %s", got.status, got.raw)
	}
	hosts := map[string]bool{}
	for _, s := range w.samples(t) {
		hosts[s.host+"/"+s.name] = true
	}
	if !hosts["web-2/cpu.usage"] || !hosts["/ok"] || len(hosts) != 3 {
		t.Errorf("stored %v, want ok, the é name and cpu.usage of web-2", hosts)
	}
}

// NUL and invalid UTF-8 are refused at the edge, for every route: in query parameters with a 400
// naming the parameter, in JSON bodies with a 400 naming the field. Nothing reaches PostgreSQL.
func TestEdgeRefusesNULAndInvalidUTF8(t *testing.T) {
	w := newWorld(t, testLimits)
	viewer, editor := w.a.tokens["viewer"], w.a.tokens["editor"]
	for _, c := range []struct{ path, field string }{
		{"/api/v1/hosts?label.env=%00", "label.env"},
		{"/api/v1/hosts?label.env=%FF", "label.env"},
		{"/api/v1/series?name=cpu%00", "name"},
		{"/api/v1/series?name_prefix=%C3", "name_prefix"},
		{"/api/v1/series?host=%00", "host"},
		{"/api/v1/logs?q=%00", "q"},
		{"/api/v1/logs?host=web%FF", "host"},
		{"/api/v1/query/range?metric=%00", "metric"},
		{"/api/v1/query/latest?metric=m&label.k=%00", "label.k"},
		{"/api/v1/checks?limit=%00", "limit"},
	} {
		got := w.call(t, "GET", c.path, viewer, nil)
		if got.status != http.StatusBadRequest || !got.names(c.field) {
			t.Errorf("GET %s: %d %s, want 400 naming %s", c.path, got.status, got.raw, c.field)
		}
	}
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/api/v1/hosts", `{"name": "web\u0000"}`, "name"},
		{"POST", "/api/v1/hosts", "{\"name\": \"web\xff\"}", "name"},
		{"POST", "/api/v1/hosts", `{"name": "web", "labels": {"env": "\u0000"}}`, "labels.env"},
		{"POST", "/api/v1/checks", `{"name": "c\u0000", "kind": "tcp", "target": "db:5432"}`, "name"},
		{"POST", "/api/v1/checks", `{"name": "c", "kind": "http", "target": "https://x.example", "settings": {"headers": {"a": "\u0000"}}}`,
			"settings.headers.a"},
	} {
		got := w.call(t, c.method, c.path, editor, c.body)
		if got.status != http.StatusBadRequest || !got.names(c.field) {
			t.Errorf("%s %s %q: %d %s, want 400 naming %s", c.method, c.path, c.body, got.status, got.raw, c.field)
		}
	}
	// An escaped backslash before u0000 is text, not a NUL.
	w.call(t, "POST", "/api/v1/hosts", editor, `{"name": "web\\u0000"}`).must(t, http.StatusCreated)
	var n int
	if err := w.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM app.hosts WHERE tenant_id = $1`, w.a.id).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d hosts stored (%v), want only the one with a literal \\u0000", n, err)
	}
	// A host name is counted in characters, as its column is: 255 two-byte characters fit.
	w.call(t, "POST", "/api/v1/hosts", editor, map[string]any{"name": strings.Repeat("é", 255)}).must(t, http.StatusCreated)
	w.call(t, "POST", "/api/v1/hosts", editor, map[string]any{"name": strings.Repeat("é", 256)}).must(t, http.StatusBadRequest)
}

// Deleting a host while its agent keeps pushing: the next log line and the next new series are stored
// under the host registered again, and the line shows in GET /logs?host=.
func TestDeletedHostIsRegisteredAgainByTheNextPush(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		editor := w.a.tokens["editor"]
		now := time.Now().UnixMilli()
		push := func(msg string, ms int64) {
			w.raw(t, "/api/v1/logs", key, []byte(fmt.Sprintf(`{"host": {"name": "web-1"}, "entries": [{"time": %d, "message": %q}]}`, ms, msg))).
				must(t, http.StatusOK)
		}
		push("before", now-2000)
		hosts := w.call(t, "GET", "/api/v1/hosts", editor, nil).must(t, http.StatusOK)
		id := fmt.Sprint(hosts.json["items"].([]any)[0].(map[string]any)["id"])
		w.call(t, "DELETE", "/api/v1/hosts/"+id, editor, nil).must(t, http.StatusNoContent)

		push("after", now-1000)
		got := w.call(t, "GET", "/api/v1/logs?host=web-1", w.a.tokens["viewer"], nil).must(t, http.StatusOK)
		if !strings.Contains(got.raw, `"message":"after"`) {
			t.Errorf("the line pushed after the delete is not found by host: %s", got.raw)
		}
		hosts = w.call(t, "GET", "/api/v1/hosts", editor, nil).must(t, http.StatusOK)
		if items := hosts.json["items"].([]any); len(items) != 1 || fmt.Sprint(items[0].(map[string]any)["id"]) == id {
			t.Fatalf("hosts after the push: %s, want web-1 registered again under a new id", hosts.raw)
		}
		// A new series of the deleted host is stored too, under the new host.
		w.call(t, "DELETE", "/api/v1/hosts/"+fmt.Sprint(hosts.json["items"].([]any)[0].(map[string]any)["id"]), editor, nil).
			must(t, http.StatusNoContent)
		w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"host": {"name": "web-1"}, "metrics": [{"name": "new.metric", "points": [[%d, 1]]}]}`,
			now))).must(t, http.StatusOK)
		stored := w.samples(t)
		if len(stored) != 1 || stored[0].host != "web-1" {
			t.Errorf("stored %+v, want new.metric under host web-1", stored)
		}
	})
}

// Our JSON is JSON: bare NaN and Infinity are a 400, bytes that are not UTF-8 too (they would collapse
// distinct names into one series).
func TestIngestJSONIsStrict(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		now := time.Now().UnixMilli()
		for _, value := range []string{"NaN", "Infinity", "-Infinity", "+1", "01", ".5", "1."} {
			got := w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d, %s]]}]}`, now, value)))
			if got.status != http.StatusBadRequest || !strings.Contains(got.raw, "malformed") {
				t.Errorf("value %s: %d %s, want 400 malformed", value, got.status, got.raw)
			}
		}
		got := w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf("{\"metrics\": [{\"name\": \"cpu\xff\", \"points\": [[%d, 1]]},"+
			"{\"name\": \"cpu\xfe\", \"points\": [[%d, 2]]}]}", now, now)))
		if got.status != http.StatusBadRequest || !got.names("metrics[0].name") {
			t.Errorf("names that are not UTF-8: %d %s", got.status, got.raw)
		}
		got = w.raw(t, "/api/v1/logs", key, []byte(fmt.Sprintf("{\"entries\": [{\"time\": %d, \"message\": \"a\xffb\"}]}", now)))
		if got.status != http.StatusBadRequest || !got.names("entries[0].message") {
			t.Errorf("a log message that is not UTF-8: %d %s", got.status, got.raw)
		}
		// Log pushes are as strict: an unknown field (a tenant_id, say) is named, not ignored.
		for body, want := range map[string]string{
			fmt.Sprintf(`{"tenant_id": "%s", "entries": [{"time": %d, "message": "m"}]}`, w.b.id, now): "tenant_id",
			fmt.Sprintf(`{"entries": [{"time": %d, "message": "m", "level": "info"}]}`, now):           "level",
			fmt.Sprintf(`{"entries": [{"time": %d, "message": "m"}]} {}`, now):                         "after",
		} {
			got := w.raw(t, "/api/v1/logs", key, []byte(body))
			if got.status != http.StatusBadRequest || !strings.Contains(got.raw, want) {
				t.Errorf("logs %s: %d %s, want 400 naming %s", body, got.status, got.raw, want)
			}
		}
		if n := len(w.samples(t)); n != 0 {
			t.Fatalf("refused pushes stored %d samples", n)
		}
		if n := len(w.storedLogs(t, w.a)) + len(w.storedLogs(t, w.b)); n != 0 {
			t.Fatalf("refused pushes stored %d log lines", n)
		}
	})
}

// accepted counts what is stored or was already there: a point repeated at the same timestamp within a
// push, in one metric or in two entries of the same series, is refused with a reason.
func TestIngestCountsWhatItStores(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.ingestKey(t, w.a)
		now := time.Now().UnixMilli()
		got := w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d, 1], [%d, 2], [%d, 3], [%d, 4]]},
			{"name": "m", "points": [[%d, 5], [%d, 6]]}]}`, now, now, now-1000, now, now, now-2000))).must(t, http.StatusOK)
		if got.json["accepted"] != 3.0 || strings.Count(got.raw, "appears more than once") != 3 ||
			!strings.Contains(got.raw, `"metric":0,"point":1`) || !strings.Contains(got.raw, `"metric":0,"point":3`) ||
			!strings.Contains(got.raw, `"metric":1,"point":0`) {
			t.Errorf("points repeated within a push: %s", got.raw)
		}
		stored := w.samples(t)
		if len(stored) != 3 || stored[2].value != 1 || stored[1].value != 3 || stored[0].value != 6 {
			t.Errorf("stored %+v, want the first of each timestamp", stored)
		}
		// A retry answers what is already there as accepted.
		again := w.raw(t, "/api/v1/ingest", key, []byte(fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%d, 1], [%d, 3]]}]}`, now, now-1000))).
			must(t, http.StatusOK)
		if again.json["accepted"] != 2.0 || len(w.samples(t)) != 3 {
			t.Errorf("a retry: %s", again.raw)
		}
		// Line protocol: the same series twice at one timestamp.
		lp := fmt.Sprintf("disk,host=db-1 used=1 %d\ndisk,host=db-1 used=2 %d\n", now*1e6, now*1e6)
		got = w.raw(t, "/api/v2/write", key, []byte(lp))
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, "appears more than once") {
			t.Errorf("line protocol duplicate: %d %s", got.status, got.raw)
		}
		if n := len(w.samples(t)); n != 4 {
			t.Errorf("%d samples stored, want 4", n)
		}
	})
}

// Concurrent pushes of new series never store more than the tenant's series limit.
func TestSeriesLimitHoldsUnderConcurrentPushes(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	ctx := context.Background()
	const limit = 50
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.tenants SET max_series = $2 WHERE id = $1`, w.a.id, limit); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	const pushes, perPush = 16, 10
	start := make(chan struct{})
	var wg sync.WaitGroup
	accepted := make([]float64, pushes)
	for p := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var metrics []string
			for i := range perPush {
				metrics = append(metrics, fmt.Sprintf(`{"name": "m%d_%d", "points": [[%d, 1]]}`, p, i, now))
			}
			<-start
			got := w.raw(t, "/api/v1/ingest", key, []byte(`{"metrics": [`+strings.Join(metrics, ",")+`]}`))
			if got.status == http.StatusOK {
				accepted[p] = got.json["accepted"].(float64)
			} else if got.status != http.StatusBadRequest || !strings.Contains(got.raw, "series limit") {
				t.Errorf("push %d: %d %s", p, got.status, got.raw)
			}
		}()
	}
	close(start)
	wg.Wait()
	var series int
	if err := w.d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.series WHERE tenant_id = $1`, w.a.id).Scan(&series); err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, a := range accepted {
		total += a
	}
	if series != limit || total != limit || len(w.samples(t)) != limit {
		t.Fatalf("%d series stored, %v samples accepted, %d stored; the limit is %d", series, total, len(w.samples(t)), limit)
	}
}

// The agent mirrors the server's limits so that it never makes a batch the server must refuse.
func TestAgentLimitsMatchTheServer(t *testing.T) {
	for name, pair := range map[string][2]int{
		"MaxLogMessageBytes":     {agent.MaxLogMessageBytes, ingest.MaxLogMessageBytes},
		"MaxHostNameChars":       {agent.MaxHostNameChars, ingest.MaxHostNameChars},
		"MaxHostLabels":          {agent.MaxHostLabels, ingest.MaxHostLabels},
		"MaxHostLabelNameBytes":  {agent.MaxHostLabelNameBytes, ingest.MaxHostLabelNameBytes},
		"MaxHostLabelValueBytes": {agent.MaxHostLabelValueBytes, ingest.MaxHostLabelValueBytes},
		"MaxMetadataValueBytes":  {agent.MaxMetadataValueBytes, ingest.HostMetadataLimits.ValueBytes},
	} {
		if pair[0] != pair[1] {
			t.Errorf("agent.%s = %d, the server's is %d", name, pair[0], pair[1])
		}
	}
}

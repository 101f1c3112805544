package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// promCall sends a request to the Prometheus HTTP API as Grafana's data source sends it: GET with the
// parameters in the URL, or POST with them as a form body; extra headers after the credential.
func (w *world) promCall(t *testing.T, method, path, credential string, params url.Values, headers ...string) response {
	t.Helper()
	u := w.srv.URL + "/prometheus" + path
	var body io.Reader
	if method == http.MethodGet {
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
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
	_ = json.Unmarshal(raw, &r.json)
	return r
}

// promSuccess checks the envelope Grafana's client requires of a 200 and answers its data.
func (r response) promData(t *testing.T) any {
	t.Helper()
	if r.status != http.StatusOK || r.json["status"] != "success" {
		t.Fatalf("status %d, want 200 with status success: %s", r.status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return r.json["data"]
}

// promErr checks Prometheus's error envelope: the status, {"status":"error","errorType":…,"error":…}.
func (r response) promErr(t *testing.T, status int, errorType string) {
	t.Helper()
	if r.status != status || r.json["status"] != "error" || r.json["errorType"] != errorType || r.str("error") == "" {
		t.Errorf("want %d with errorType %s in Prometheus's error shape, got %d: %s", status, errorType, r.status, r.raw)
	}
}

// promSeed pushes, through the ingest API, a minute of samples every second for two hosts of tenant A
// (cpu.usage_pct, a gauge, and http.requests_total, a counter) and one series of tenant B, ending at
// end; it answers the values of A's web-1 gauge by time.
func (w *world) promSeed(t *testing.T, end time.Time) map[int64]float64 {
	t.Helper()
	gauge := map[int64]float64{}
	push := func(tw *tenantWorld, host string, metrics []map[string]any) {
		key := w.ingestKey(t, tw)
		body, _ := json.Marshal(map[string]any{"host": map[string]any{"name": host}, "metrics": metrics})
		w.raw(t, "/api/v1/ingest", key, body).must(t, http.StatusOK)
	}
	for i, host := range []string{"web-1", "web-2"} {
		var cpu, requests [][2]float64
		for k := 0; k <= 600; k++ {
			ms := end.Add(-time.Duration(600-k) * time.Second).UnixMilli()
			v := float64((k*7+i*3)%40) / 4
			if i == 0 {
				gauge[ms] = v
			}
			cpu = append(cpu, [2]float64{float64(ms), v})
			requests = append(requests, [2]float64{float64(ms), float64(k * (i + 1))})
		}
		push(w.a, host, []map[string]any{
			{"name": "cpu.usage_pct", "labels": map[string]string{"cpu": "total"}, "points": cpu},
			{"name": "http.requests_total", "labels": map[string]string{"code": "200"}, "points": requests},
		})
	}
	push(w.b, "b-1", []map[string]any{{"name": "secret.b", "points": [][2]float64{{float64(end.UnixMilli()), 42}}}})
	return gauge
}

func (w *world) readKey(t *testing.T, tw *tenantWorld) string {
	t.Helper()
	return w.call(t, "POST", "/api/v1/api-keys", tw.tokens["admin"], map[string]any{"name": "grafana", "scopes": []string{"read"}}).
		must(t, http.StatusCreated).str("key")
}

// Grafana's Prometheus data source, pointed at <infrawatch>/prometheus with the header
// "Authorization: Bearer <read key>", sends the requests below (Grafana 11 and 12: pkg/promlib's
// client and health check, packages/grafana-prometheus's resource clients; HTTP method POST, its
// default, where the data source posts, GET where it only gets). They are replayed as sent, and every
// answer is checked for what Grafana reads of it.
//
//	Save & test:
//	  1. POST /api/v1/query            query=1+1&time=4               → scalar [4, "2"]
//	  2. GET  /api/v1/status/buildinfo                                 → data.version, no data.features (Prometheus, not Mimir)
//	Opening the query editor (metric and label autocompletion):
//	  3. GET  /api/v1/label/__name__/values?start=S&end=E&limit=40000 → the metric names
//	  4. GET  /api/v1/labels?limit=40000&start=S&end=E                 → the label names
//	  5. GET  /api/v1/metadata                                          → an object (empty: no metadata)
//	Choosing a metric and a label:
//	  6. POST /api/v1/series           start=S&end=E&match[]=cpu_usage_pct&limit=40000
//	  7. GET  /api/v1/label/host/values?start=S&end=E&match[]=cpu_usage_pct&limit=40000
//	The panel (range query at the dashboard's step, and the "Instant" toggle):
//	  8. POST /api/v1/query_range      query=…&start=S&end=E&step=15   → matrix, one series per host
//	  9. POST /api/v1/query            query=…&time=E                   → vector
//
// S and E are seconds (Grafana writes them as integers for the resources, with decimals for queries).
func TestGrafanaRequests(t *testing.T) {
	w := newWorldOn(t, db.FlavorPostgres, testLimits)
	end := time.Now().Truncate(time.Second).Add(-time.Minute)
	gauge := w.promSeed(t, end)
	key := w.readKey(t, w.a)
	grafana := []string{"User-Agent", "Grafana/12.0.0", "X-Grafana-Org-Id", "1", "X-Dashboard-Uid", "infra", "X-Panel-Id", "2"}
	s, e := strconv.FormatInt(end.Add(-time.Hour).Unix(), 10), strconv.FormatInt(end.Unix(), 10)

	// 1. The health check: an instant query of 1+1 at 4 s after the epoch.
	d := w.promCall(t, "POST", "/api/v1/query", key, url.Values{"query": {"1+1"}, "time": {"4"}}, grafana...).promData(t).(map[string]any)
	if d["resultType"] != "scalar" || fmt.Sprint(d["result"]) != "[4 2]" {
		t.Errorf("1+1 answers %v", d)
	}
	// 2. Build info: Grafana takes a Prometheus without features for Prometheus.
	d = w.promCall(t, "GET", "/api/v1/status/buildinfo", key, nil, grafana...).promData(t).(map[string]any)
	if v, _ := d["version"].(string); !strings.HasPrefix(v, "3.") || d["features"] != nil {
		t.Errorf("buildinfo %v, want a 3.x version and no features", d)
	}
	// 3. Metric names, with dots as underscores.
	names := w.promCall(t, "GET", "/api/v1/label/__name__/values", key, url.Values{"start": {s}, "end": {e}, "limit": {"40000"}}, grafana...).
		promData(t)
	if fmt.Sprint(names) != "[cpu_usage_pct http_requests_total]" {
		t.Errorf("names %v", names)
	}
	// 4. Label names.
	labels := w.promCall(t, "GET", "/api/v1/labels", key, url.Values{"limit": {"40000"}, "start": {s}, "end": {e}}, grafana...).promData(t)
	if fmt.Sprint(labels) != "[__name__ code cpu host]" {
		t.Errorf("labels %v", labels)
	}
	// 5. Metadata: an object.
	if md, ok := w.promCall(t, "GET", "/api/v1/metadata", key, nil, grafana...).promData(t).(map[string]any); !ok || len(md) != 0 {
		t.Errorf("metadata %v, want {}", md)
	}
	// 6. The series of a metric.
	series := w.promCall(t, "POST", "/api/v1/series", key, url.Values{"start": {s}, "end": {e}, "match[]": {"cpu_usage_pct"},
		"limit": {"40000"}}, grafana...).promData(t).([]any)
	if len(series) != 2 || fmt.Sprint(series[0]) != "map[__name__:cpu_usage_pct cpu:total host:web-1]" {
		t.Errorf("series %v", series)
	}
	// 7. A label's values for a metric.
	hosts := w.promCall(t, "GET", "/api/v1/label/host/values", key, url.Values{"start": {s}, "end": {e}, "match[]": {"cpu_usage_pct"},
		"limit": {"40000"}}, grafana...).promData(t)
	if fmt.Sprint(hosts) != "[web-1 web-2]" {
		t.Errorf("hosts %v", hosts)
	}
	// 8. The panel: a range query, POST, times with decimals as Grafana's backend writes them.
	start := end.Add(-5 * time.Minute)
	qs := url.Values{"query": {`sum by (host) (rate(http_requests_total[1m]))`},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', -1, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', -1, 64)}, "step": {"15"}}
	d = w.promCall(t, "POST", "/api/v1/query_range", key, qs, grafana...).promData(t).(map[string]any)
	result, _ := d["result"].([]any)
	if d["resultType"] != "matrix" || len(result) != 2 {
		t.Fatalf("range answer %v", d)
	}
	for i, r := range result {
		r := r.(map[string]any)
		values := r["values"].([]any)
		if len(values) != 21 {
			t.Errorf("series %v has %d points, want 21 (5 minutes at 15 s, both ends)", r["metric"], len(values))
		}
		// The counters rise by 1 (web-1) and 2 (web-2) a second.
		for _, v := range values {
			got, _ := strconv.ParseFloat(v.([]any)[1].(string), 64)
			if got != float64(i+1) {
				t.Errorf("rate of %v is %v, want %d", r["metric"], got, i+1)
				break
			}
		}
	}
	// The same with GET, as a data source set to GET sends it.
	if d := w.promCall(t, "GET", "/api/v1/query_range", key, qs, grafana...).promData(t).(map[string]any); len(d["result"].([]any)) != 2 {
		t.Errorf("GET range answer %v", d)
	}
	// 9. The instant toggle: the gauge's last value at E.
	d = w.promCall(t, "POST", "/api/v1/query", key, url.Values{"query": {`cpu_usage_pct{host="web-1"}`}, "time": {e}}, grafana...).
		promData(t).(map[string]any)
	result, _ = d["result"].([]any)
	if d["resultType"] != "vector" || len(result) != 1 {
		t.Fatalf("instant answer %v", d)
	}
	point := result[0].(map[string]any)["value"].([]any)
	if point[0].(float64) != float64(end.Unix()) || point[1] != strconv.FormatFloat(gauge[end.UnixMilli()], 'f', -1, 64) {
		t.Errorf("instant value %v, want [%d %v]", point, end.Unix(), gauge[end.UnixMilli()])
	}
}

// Tenant B's PromQL {__name__=~".+"} and label/__name__/values answer B's series only, with A's data
// in the same database, on each flavor.
func TestPromQLTenantIsolation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		end := time.Now().Truncate(time.Second).Add(-time.Minute)
		w.promSeed(t, end)
		for _, cred := range []string{w.readKey(t, w.b), w.b.tokens["viewer"]} {
			d := w.promCall(t, "GET", "/api/v1/query", cred, url.Values{"query": {`{__name__=~".+"}`},
				"time": {strconv.FormatInt(end.Unix(), 10)}}).promData(t).(map[string]any)
			var got []string
			for _, r := range d["result"].([]any) {
				got = append(got, fmt.Sprint(r.(map[string]any)["metric"]))
			}
			if strings.Join(got, " ") != "map[__name__:secret_b host:b-1]" {
				t.Errorf("B's {__name__=~\".+\"} answers %v", got)
			}
			names := w.promCall(t, "GET", "/api/v1/label/__name__/values", cred, nil).promData(t)
			if fmt.Sprint(names) != "[secret_b]" {
				t.Errorf("B's names %v", names)
			}
			series := w.promCall(t, "POST", "/api/v1/series", cred, url.Values{"match[]": {`{__name__=~".+"}`}}).promData(t)
			if fmt.Sprint(series) != "[map[__name__:secret_b host:b-1]]" {
				t.Errorf("B's series %v", series)
			}
			hosts := w.promCall(t, "GET", "/api/v1/label/host/values", cred, nil).promData(t)
			if fmt.Sprint(hosts) != "[b-1]" {
				t.Errorf("B's hosts %v", hosts)
			}
		}
	})
}

// Errors have Prometheus's shape on every route of /prometheus/api/v1, those of the credential, the
// permission and the parameters included.
func TestPromQLErrors(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.readKey(t, w.a)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	w.promCall(t, "GET", "/api/v1/query", "", url.Values{"query": {"up"}}).promErr(t, http.StatusUnauthorized, "unauthorized")
	w.promCall(t, "GET", "/api/v1/query", "iwk_nonsense", url.Values{"query": {"up"}}).promErr(t, http.StatusUnauthorized, "unauthorized")
	w.promCall(t, "GET", "/api/v1/query", w.ingestKey(t, w.a), url.Values{"query": {"up"}}).promErr(t, http.StatusForbidden, "forbidden")
	for _, c := range []struct {
		method, path string
		params       url.Values
		mention      string
	}{
		{"GET", "/api/v1/query", url.Values{"query": {"rate("}}, `invalid parameter "query"`},
		{"GET", "/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, `invalid parameter "time"`},
		{"POST", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {now}, "end": {now}}, `invalid parameter "step"`},
		{"POST", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {now}, "end": {"1"}, "step": {"15"}}, `invalid parameter "end"`},
		{"POST", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {now}, "step": {"1"}}, "11,000 points"},
		{"POST", "/api/v1/query_range", url.Values{"query": {"up[5m]"}, "start": {now}, "end": {now}, "step": {"1"}}, `invalid parameter "query"`},
		{"GET", "/api/v1/series", nil, "no match[] parameter provided"},
		{"GET", "/api/v1/series", url.Values{"match[]": {`{env=""}`}}, "non-empty matcher"},
		{"GET", "/api/v1/labels", url.Values{"limit": {"-1"}}, `invalid parameter "limit"`},
		{"POST", "/api/v1/query", url.Values{"query": {"up\x00"}}, `invalid parameter "query"`},
		{"GET", "/api/v1/query", url.Values{"query": {"up"}, "timeout": {"soon"}}, `invalid parameter "timeout"`},
	} {
		got := w.promCall(t, c.method, c.path, key, c.params)
		got.promErr(t, http.StatusBadRequest, "bad_data")
		if !strings.Contains(got.str("error"), c.mention) {
			t.Errorf("%s %s %v: the error does not say %q: %s", c.method, c.path, c.params, c.mention, got.raw)
		}
	}
	w.promCall(t, "GET", "/api/v1/nope", key, nil).promErr(t, http.StatusNotFound, "not_found")
	w.promCall(t, "DELETE", "/api/v1/query", key, nil).promErr(t, http.StatusMethodNotAllowed, "bad_data")
}

// The answers' numbers are written as Prometheus writes them: seconds with milliseconds, values as
// strings, NaN and infinities by name.
func TestPromQLNumbers(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.readKey(t, w.a)
	d := w.promCall(t, "GET", "/api/v1/query", key, url.Values{"query": {`vector(1/0) or label_replace(vector(-1/0), "x", "y", "", "")`},
		"time": {"1700000000.123"}}).promData(t).(map[string]any)
	var got []string
	for _, r := range d["result"].([]any) {
		v := r.(map[string]any)["value"].([]any)
		got = append(got, fmt.Sprintf("%v %v", strconv.FormatFloat(v[0].(float64), 'f', -1, 64), v[1]))
	}
	sort.Strings(got)
	if strings.Join(got, ", ") != "1700000000.123 +Inf, 1700000000.123 -Inf" {
		t.Errorf("infinities: %v", got)
	}
	d = w.promCall(t, "GET", "/api/v1/query", key, url.Values{"query": {`0/0`}, "time": {"1700000000"}}).promData(t).(map[string]any)
	if fmt.Sprint(d["result"]) != "[1.7e+09 NaN]" {
		t.Errorf("NaN: %v", d["result"])
	}
	d = w.promCall(t, "GET", "/api/v1/query", key, url.Values{"query": {`"a \"quoted\" string"`}, "time": {"1.5"}}).promData(t).(map[string]any)
	if d["resultType"] != "string" || fmt.Sprint(d["result"]) != `[1.5 a "quoted" string]` {
		t.Errorf("string: %v", d)
	}
}

package checks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopbackProber may connect to loopback, where the tests' servers listen.
func loopbackProber() *Prober {
	return NewProber(&Guard{AllowPrivate: true, Resolver: noDNSResolver()})
}

// probeHTTPCheck runs an HTTP check against target with settings given as JSON.
func probeHTTPCheck(t *testing.T, p *Prober, target, settings string) Outcome {
	t.Helper()
	c := Check{Kind: "http", Target: target, Timeout: 5 * time.Second}
	if settings != "" {
		c.Settings = json.RawMessage(settings)
	}
	return p.Probe(context.Background(), c)
}

// outcomeMetric returns the value of the named metric, failing the test when it is missing.
func outcomeMetric(t *testing.T, out Outcome, name string) float64 {
	t.Helper()
	for _, m := range out.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("no metric %s in %+v", name, out.Metrics)
	return 0
}

func hasOutcomeMetric(out Outcome, name string) bool {
	for _, m := range out.Metrics {
		if m.Name == name {
			return true
		}
	}
	return false
}

// testHTTPServer answers:
//
//	/status/N     status N, body "status N"
//	/redirect/N   302 to /redirect/N-1; /redirect/0 answers 200 "ok"
//	/hello        200 "hello world"
func testHTTPServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
	})
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			io.WriteString(w, "ok")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello world")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	srv := testHTTPServer(t)
	p := loopbackProber()
	for _, tc := range []struct {
		name, path, settings string
		up                   bool
		reason               string
	}{
		{"200 is 2xx", "/status/200", "", true, ""},
		{"204 is 2xx", "/status/204", "", true, ""},
		{"503 is not 2xx", "/status/503", "", false, "status 503, expected 2xx"},
		{"404 is not 2xx", "/status/404", "", false, "status 404, expected 2xx"},
		{"expected 404", "/status/404", `{"expected_status": [404]}`, true, ""},
		{"expected 200 or 204, got 200", "/status/200", `{"expected_status": [200, 204]}`, true, ""},
		{"expected 200 or 204, got 202", "/status/202", `{"expected_status": [200, 204]}`, false, "status 202, expected 200 or 204"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := probeHTTPCheck(t, p, srv.URL+tc.path, tc.settings)
			if out.Up != tc.up || out.Reason != tc.reason {
				t.Fatalf("up=%v reason %q, want up=%v reason %q", out.Up, out.Reason, tc.up, tc.reason)
			}
			code, _ := strconv.Atoi(strings.TrimPrefix(tc.path, "/status/"))
			if got := outcomeMetric(t, out, "http.status_code"); got != float64(code) {
				t.Errorf("http.status_code = %v, want %d", got, code)
			}
			if out.Detail["status_code"] != code {
				t.Errorf("detail status_code = %v, want %d", out.Detail["status_code"], code)
			}
		})
	}
}

func TestHTTPMetricsAndDetail(t *testing.T) {
	t.Parallel()
	srv := testHTTPServer(t)
	out := probeHTTPCheck(t, loopbackProber(), srv.URL+"/hello", "")
	if !out.Up {
		t.Fatalf("down: %s", out.Reason)
	}
	if out.Latency <= 0 {
		t.Errorf("latency %v, want > 0", out.Latency)
	}
	if d := outcomeMetric(t, out, "http.duration_ms"); d <= 0 || d != float64(out.Latency)/1e6 {
		t.Errorf("http.duration_ms = %v, want the latency %v in ms", d, out.Latency)
	}
	if c := outcomeMetric(t, out, "http.connect_ms"); c <= 0 {
		t.Errorf("http.connect_ms = %v, want > 0", c)
	}
	if fb := outcomeMetric(t, out, "http.first_byte_ms"); fb <= 0 {
		t.Errorf("http.first_byte_ms = %v, want > 0", fb)
	}
	// An IP literal is not looked up; plain HTTP has no handshake and no certificate.
	if v := outcomeMetric(t, out, "http.dns_ms"); v != 0 {
		t.Errorf("http.dns_ms = %v, want 0 for an IP literal", v)
	}
	if v := outcomeMetric(t, out, "http.tls_ms"); v != 0 {
		t.Errorf("http.tls_ms = %v, want 0 for plain HTTP", v)
	}
	if hasOutcomeMetric(out, "http.cert_days_left") {
		t.Error("http.cert_days_left emitted for plain HTTP")
	}
	if hasOutcomeMetric(out, "http.up") {
		t.Error("http.up emitted; the engine records the status itself")
	}
	if out.Detail["final_url"] != srv.URL+"/hello" || out.Detail["redirects"] != 0 || out.Detail["status_code"] != 200 {
		t.Errorf("detail %v", out.Detail)
	}
	for _, k := range []string{"duration_ms", "dns_ms", "connect_ms", "tls_ms", "first_byte_ms"} {
		if _, ok := out.Detail[k].(float64); !ok {
			t.Errorf("detail %s = %v, want milliseconds", k, out.Detail[k])
		}
	}
}

func TestHTTPBodyMatch(t *testing.T) {
	t.Parallel()
	srv := testHTTPServer(t)
	p := loopbackProber()
	for _, tc := range []struct {
		name, settings string
		up             bool
		reason         string
	}{
		{"contains", `{"body_contains": "world"}`, true, ""},
		{"does not contain", `{"body_contains": "ok"}`, false, `body does not contain "ok"`},
		{"regex matches", `{"body_regex": "^hello w.rld$"}`, true, ""},
		{"regex does not match", `{"body_regex": "^world"}`, false, "body does not match /^world/"},
		{"both match", `{"body_contains": "hello", "body_regex": "wor+ld"}`, true, ""},
		{"status checked first", `{"body_contains": "hello", "expected_status": [201]}`, false, "status 200, expected 201"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := probeHTTPCheck(t, p, srv.URL+"/hello", tc.settings)
			if out.Up != tc.up || out.Reason != tc.reason {
				t.Fatalf("up=%v reason %q, want up=%v reason %q", out.Up, out.Reason, tc.up, tc.reason)
			}
		})
	}
}

func TestHTTPRedirects(t *testing.T) {
	t.Parallel()
	srv := testHTTPServer(t)
	p := loopbackProber()
	for _, tc := range []struct {
		name, path, settings string
		up                   bool
		reason               string
		redirects            int
		finalPath            string
	}{
		{"followed", "/redirect/2", "", true, "", 2, "/redirect/0"},
		{"five by default", "/redirect/5", "", true, "", 5, "/redirect/0"},
		{"more than five by default", "/redirect/6", "", false, "too many redirects (more than 5)", 0, ""},
		{"more than max_redirects", "/redirect/3", `{"max_redirects": 2}`, false, "too many redirects (more than 2)", 0, ""},
		{"max_redirects 0 judges the 302", "/redirect/1", `{"max_redirects": 0}`, false, "status 302, expected 2xx", 0, "/redirect/1"},
		{"max_redirects 0, 302 expected", "/redirect/1", `{"max_redirects": 0, "expected_status": [302]}`, true, "", 0, "/redirect/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := probeHTTPCheck(t, p, srv.URL+tc.path, tc.settings)
			if out.Up != tc.up || out.Reason != tc.reason {
				t.Fatalf("up=%v reason %q, want up=%v reason %q", out.Up, out.Reason, tc.up, tc.reason)
			}
			if tc.finalPath == "" {
				return
			}
			if out.Detail["redirects"] != tc.redirects || out.Detail["final_url"] != srv.URL+tc.finalPath {
				t.Errorf("redirects %v final_url %v, want %d and %s", out.Detail["redirects"], out.Detail["final_url"], tc.redirects, srv.URL+tc.finalPath)
			}
		})
	}
}

func TestHTTPPostSendsHeadersAndBody(t *testing.T) {
	t.Parallel()
	type received struct {
		method, path, token, contentType, host string
		body                                   []byte
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.URL.Path, r.Header.Get("X-Token"), r.Header.Get("Content-Type"), r.Host, body}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)

	body := `{"name": "probe", "n": 1}` + "\n"
	settings, _ := json.Marshal(HTTPSettings{
		Method:         "POST",
		Headers:        map[string]string{"X-Token": "s3cret", "Content-Type": "application/json", "Host": "app.example.test"},
		Body:           body,
		ExpectedStatus: []int{201},
	})
	out := probeHTTPCheck(t, loopbackProber(), srv.URL+"/submit", string(settings))
	if !out.Up {
		t.Fatalf("down: %s", out.Reason)
	}
	r := <-got
	want := received{"POST", "/submit", "s3cret", "application/json", "app.example.test", []byte(body)}
	if r.method != want.method || r.path != want.path || r.token != want.token || r.contentType != want.contentType ||
		r.host != want.host || string(r.body) != body {
		t.Errorf("server received %+v (body %q), want %+v (body %q)", r, r.body, want, body)
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	t.Parallel()
	out := probeHTTPCheck(t, loopbackProber(), "http://"+closedTCPPort(t)+"/", "")
	if out.Up || out.Reason != "connection refused" {
		t.Fatalf("up=%v reason %q, want down: connection refused", out.Up, out.Reason)
	}
	if out.Latency != 0 || hasOutcomeMetric(out, "http.duration_ms") {
		t.Errorf("latency %v metrics %v, want none without a response", out.Latency, out.Metrics)
	}
}

// TestHTTPTimeout probes a server that accepts connections and never answers.
func TestHTTPTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	out := loopbackProber().Probe(context.Background(), Check{Kind: "http", Target: "http://" + ln.Addr().String() + "/", Timeout: time.Second})
	if out.Up || out.Reason != "timeout after 1s" {
		t.Fatalf("up=%v reason %q, want down: timeout after 1s", out.Up, out.Reason)
	}
}

func TestHTTPBadTarget(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"ftp://127.0.0.1/", "127.0.0.1:80", "http://"} {
		out := probeHTTPCheck(t, loopbackProber(), target, "")
		if out.Up || !strings.Contains(out.Reason, "is not an http:// or https:// URL") {
			t.Errorf("%q: up=%v reason %q, want down: not an http URL", target, out.Up, out.Reason)
		}
	}
}

// testCert returns a self-signed certificate for 127.0.0.1 valid from notBefore to notAfter.
func testCert(t *testing.T, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "infrawatch test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// testTLSServer serves "secure" over HTTPS with cert.
func testTLSServer(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPTLS(t *testing.T) {
	t.Parallel()
	now := time.Now()
	validUntil := now.Add(30*24*time.Hour + time.Hour)
	valid := testTLSServer(t, testCert(t, now.Add(-time.Hour), validUntil))
	expiredAt := now.Add(-3 * 24 * time.Hour)
	expired := testTLSServer(t, testCert(t, now.Add(-30*24*time.Hour), expiredAt))
	wantDays := func(notAfter time.Time) float64 { return math.Floor(time.Until(notAfter).Hours() / 24) }
	p := loopbackProber()

	t.Run("tls_verify false", func(t *testing.T) {
		t.Parallel()
		out := probeHTTPCheck(t, p, valid.URL, `{"tls_verify": false, "body_contains": "secure"}`)
		if !out.Up {
			t.Fatalf("down: %s", out.Reason)
		}
		if days := outcomeMetric(t, out, "http.cert_days_left"); math.Abs(days-wantDays(validUntil)) > 1 {
			t.Errorf("http.cert_days_left = %v, want %v ± 1", days, wantDays(validUntil))
		}
		if out.Detail["cert_not_after"] != validUntil.UTC().Format(time.RFC3339) {
			t.Errorf("cert_not_after = %v, want %s", out.Detail["cert_not_after"], validUntil.UTC().Format(time.RFC3339))
		}
		if v := outcomeMetric(t, out, "http.tls_ms"); v <= 0 {
			t.Errorf("http.tls_ms = %v, want > 0", v)
		}
	})
	t.Run("tls_verify true, self-signed", func(t *testing.T) {
		t.Parallel()
		out := probeHTTPCheck(t, p, valid.URL, "")
		if out.Up || !strings.HasPrefix(out.Reason, "x509: ") {
			t.Fatalf("up=%v reason %q, want down with an x509 reason", out.Up, out.Reason)
		}
		// The certificate was refused, yet its expiry is still worth reporting.
		if days := outcomeMetric(t, out, "http.cert_days_left"); math.Abs(days-wantDays(validUntil)) > 1 {
			t.Errorf("http.cert_days_left = %v, want %v ± 1", days, wantDays(validUntil))
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		out := probeHTTPCheck(t, p, expired.URL, "")
		if out.Up || !strings.Contains(out.Reason, "TLS certificate has expired") {
			t.Fatalf("up=%v reason %q, want down saying the certificate has expired", out.Up, out.Reason)
		}
		if days := outcomeMetric(t, out, "http.cert_days_left"); days > -2 || math.Abs(days-wantDays(expiredAt)) > 1 {
			t.Errorf("http.cert_days_left = %v, want %v ± 1", days, wantDays(expiredAt))
		}
	})
	t.Run("expired, tls_verify false", func(t *testing.T) {
		t.Parallel()
		out := probeHTTPCheck(t, p, expired.URL, `{"tls_verify": false}`)
		if !out.Up {
			t.Fatalf("down: %s", out.Reason)
		}
		if days := outcomeMetric(t, out, "http.cert_days_left"); days >= 0 {
			t.Errorf("http.cert_days_left = %v, want negative", days)
		}
	})
}

// TestHTTPRebindingRefusedAtConnect resolves a name through a test DNS server on loopback. The
// guard's save-time view of the name does not matter: the address actually dialled is checked, so a
// name that resolves to loopback is refused and the server never sees a connection.
func TestHTTPRebindingRefusedAtConnect(t *testing.T) {
	t.Parallel()
	dnsAddr := startTestDNS(t)
	ln := newCountingListener(t)
	guard := &Guard{Resolver: testDNSResolver(dnsAddr)}
	out := NewProber(guard).Probe(context.Background(), Check{
		Kind:    "http",
		Target:  fmt.Sprintf("http://rebind.example.test:%d/", ln.port()),
		Timeout: 2 * time.Second,
	})
	if out.Up || !strings.Contains(out.Reason, "not allowed") {
		t.Fatalf("up=%v reason %q, want down: target not allowed", out.Up, out.Reason)
	}
	ln.assertNoneAccepted(t)

	// The same name, allowed, does reach a server: the refusal above was the guard's doing. The name
	// was looked up, so the DNS phase took some time.
	srv := testHTTPServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	guard = &Guard{AllowPrivate: true, Resolver: testDNSResolver(dnsAddr)}
	out = probeHTTPCheck(t, NewProber(guard), "http://rebind.example.test:"+port+"/hello", "")
	if !out.Up {
		t.Fatalf("allowed: down: %s", out.Reason)
	}
	if v := outcomeMetric(t, out, "http.dns_ms"); v <= 0 {
		t.Errorf("http.dns_ms = %v, want > 0 for a name", v)
	}
}

// A check's headers and body are secrets of its target: a redirect to another origin must not carry
// them there. Go's client would forward custom headers, and resend the body on a 307 or 308.
func TestHTTPRedirectToAnotherOriginIsNotFollowedWithSecrets(t *testing.T) {
	t.Parallel()
	var elsewhere sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		elsewhere.Lock()
		leaked = append(leaked, fmt.Sprintf("%s token=%q body=%q", r.Method, r.Header.Get("X-Token"), body))
		elsewhere.Unlock()
	}))
	t.Cleanup(other.Close)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/final" {
			if r.Header.Get("X-Token") != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
			}
			return
		}
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(target.Close)
	p := loopbackProber()

	withSecrets := `{"method": "POST", "headers": {"X-Token": "s3cret"}, "body": "password=hunter2"}`
	out := probeHTTPCheck(t, p, target.URL+"/away", withSecrets)
	if out.Up || out.Reason != "status 307, expected 2xx" {
		t.Errorf("up=%v reason %q, want the 307 judged as the answer", out.Up, out.Reason)
	}
	if out.Detail["redirect_not_followed"] == nil {
		t.Errorf("detail %v does not say why the redirect was not followed", out.Detail)
	}
	// Within the origin, the redirect is followed with the headers and body.
	if out := probeHTTPCheck(t, p, target.URL+"/same", withSecrets); !out.Up {
		t.Errorf("same-origin redirect: down: %s", out.Reason)
	}
	// Without secrets, a redirect elsewhere is followed as before.
	if out := probeHTTPCheck(t, p, target.URL+"/away", ""); !out.Up {
		t.Errorf("redirect elsewhere without secrets: down: %s", out.Reason)
	}
	elsewhere.Lock()
	defer elsewhere.Unlock()
	if len(leaked) != 1 || leaked[0] != `GET token="" body=""` {
		t.Errorf("the other origin received %q, want only the check without secrets", leaked)
	}
}

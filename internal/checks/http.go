package checks

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// httpKind sends one HTTP request and judges the response. Target: an http:// or https:// URL.
type httpKind struct{}

// HTTPSettings are an HTTP check's settings. Unknown settings are refused.
type HTTPSettings struct {
	Method         string            `json:"method"`          // default GET
	Headers        map[string]string `json:"headers"`         // request headers
	Body           string            `json:"body"`            // request body
	ExpectedStatus []int             `json:"expected_status"` // default: any 2xx
	BodyContains   string            `json:"body_contains"`   // substring the body must contain
	BodyRegex      string            `json:"body_regex"`      // RE2 the body must match
	MaxRedirects   *int              `json:"max_redirects"`   // 0–10 (default 5)
	TLSVerify      *bool             `json:"tls_verify"`      // default true
}

// Bounds of an HTTP check's settings.
const (
	maxHTTPHeaders      = 32
	maxHeaderNameBytes  = 256
	maxHeaderValueBytes = 4096
	maxHTTPBodyBytes    = 8192
	maxBodyMatchBytes   = 1024 // body_contains and body_regex
	maxExpectedStatuses = 20
)

func (httpKind) Name() string { return "http" }

func (httpKind) Validate(target string, settings json.RawMessage) []Problem {
	var ps problems
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		ps.add("target", "must be an http:// or https:// URL with a host and no user info")
	}
	var st HTTPSettings
	if !decodeSettings(&ps, "http", settings, &st) {
		return ps
	}
	if st.Method != "" && !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, st.Method) {
		ps.add("settings.method", "must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS")
	}
	if len(st.ExpectedStatus) > maxExpectedStatuses {
		ps.add("settings.expected_status", "must list at most %d statuses", maxExpectedStatuses)
	}
	for _, code := range st.ExpectedStatus {
		if code < 100 || code > 599 {
			ps.add("settings.expected_status", "status %d is not an HTTP status", code)
		}
	}
	ps.atMost("settings.body", st.Body, maxHTTPBodyBytes)
	ps.atMost("settings.body_contains", st.BodyContains, maxBodyMatchBytes)
	ps.atMost("settings.body_regex", st.BodyRegex, maxBodyMatchBytes)
	if st.BodyRegex != "" && len(st.BodyRegex) <= maxBodyMatchBytes {
		if _, err := regexp.Compile(st.BodyRegex); err != nil {
			ps.add("settings.body_regex", "is not a valid regular expression: %v", err)
		}
	}
	ps.between("settings.max_redirects", st.MaxRedirects, 0, 10)
	ps.headers(st.Headers)
	return ps
}

// headers checks the request headers a check sends (HTTP and Prometheus checks): how many, and each
// name and value.
func (ps *problems) headers(headers map[string]string) {
	if len(headers) > maxHTTPHeaders {
		ps.add("settings.headers", "must have at most %d headers, not %d", maxHTTPHeaders, len(headers))
	}
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		if name == "" || len(name) > maxHeaderNameBytes || strings.ContainsAny(name, " :\r\n\x00") {
			ps.add("settings.headers", "header name %.64q is not valid (at most %d bytes, no spaces, colons or line breaks)",
				name, maxHeaderNameBytes)
			continue
		}
		value := headers[name]
		ps.atMost("settings.headers."+name, value, maxHeaderValueBytes)
		if strings.ContainsAny(value, "\r\n\x00") {
			ps.add("settings.headers."+name, "must not contain line breaks or NUL")
		}
	}
}

func (httpKind) Endpoints(target string, _ json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "target", Host: httpKind{}.TargetHost(target)}}
}

func (httpKind) TargetHost(target string) string {
	if u, err := url.Parse(target); err == nil {
		return u.Hostname()
	}
	return target
}

// Secrets: the body and every header's value; Authorization, API keys and cookies travel there.
func (httpKind) Secrets() Secrets {
	return Secrets{Settings: []string{"body"}, Maps: []string{"headers"}}
}

// Destination is the target URL, where the headers and the body go.
func (httpKind) Destination(target string, _ json.RawMessage) string { return target }

// httpBodyLimit is how much of a response body the HTTP probe reads and matches against.
const httpBodyLimit = 1 << 20

// errTooManyRedirects ends a request that would follow more redirects than the check allows.
var errTooManyRedirects = errors.New("too many redirects")

// Probe sends one request and checks the status and body of the final response. Every connection,
// the first and each redirect's, is dialled through the guard, so a redirect to a forbidden address
// or a name that now resolves to one is refused at connect time. Environment proxies are never used:
// a proxy would connect on the check's behalf where the guard cannot see.
func (httpKind) Probe(ctx context.Context, p *Prober, c Check) Outcome {
	var st HTTPSettings
	if len(c.Settings) > 0 {
		if err := json.Unmarshal(c.Settings, &st); err != nil {
			return down("settings: %v", err)
		}
	}
	maxRedirects := 5
	if st.MaxRedirects != nil {
		maxRedirects = *st.MaxRedirects
	}
	var bodyRE *regexp.Regexp
	if st.BodyRegex != "" {
		re, err := regexp.Compile(st.BodyRegex)
		if err != nil {
			return down("settings.body_regex is not a valid regular expression: %v", err)
		}
		bodyRE = re
	}
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return down("target %q is not an http:// or https:// URL", c.Target)
	}

	var reqBody io.Reader
	if st.Body != "" {
		reqBody = strings.NewReader(st.Body) // NewRequest lets a 307 or 308 redirect send it again
	}
	var tm httpTimings
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tm.trace()),
		cmp.Or(st.Method, http.MethodGet), c.Target, reqBody)
	if err != nil {
		return down("build request: %v", err)
	}
	req.Header.Set("User-Agent", "infrawatch-poller")
	for name, value := range st.Headers {
		if strings.EqualFold(name, "Host") {
			req.Host = value // net/http takes the Host header from here, never from Header
			continue
		}
		req.Header.Set(name, value)
	}

	dialer := p.guard.Dialer(c.Timeout)
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, dialableAddr(addr))
		},
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: st.TLSVerify != nil && !*st.TLSVerify},
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer transport.CloseIdleConnections()
	redirects := 0
	var notFollowed string
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if maxRedirects == 0 {
				return http.ErrUseLastResponse // the 3xx is the response the check judges
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("%w (more than %d)", errTooManyRedirects, maxRedirects)
			}
			// The headers and body of a check are secrets of its target. Go's client would carry
			// custom headers to any host, and the body too on a 307 or 308: stop at the 3xx instead.
			if carriesSecrets(st) && !sameOrigin(next.URL, via[0].URL) {
				notFollowed = "the redirect leads to another origin and the check sends headers or a body"
				return http.ErrUseLastResponse
			}
			redirects = len(via)
			return nil
		},
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		out := httpFailure(err, c.Timeout, &tm)
		out.Detail["redirects"] = redirects // a redirect may be what led to the failure
		return out
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, httpBodyLimit+1))
	total := time.Since(start)
	truncated := len(body) > httpBodyLimit
	if truncated {
		body = body[:httpBodyLimit]
	}

	out := Outcome{Up: true, Latency: total, Detail: tm.detail()}
	out.Detail["duration_ms"] = msFloat(total)
	out.Detail["status_code"] = resp.StatusCode
	out.Detail["final_url"] = resp.Request.URL.Redacted()
	out.Detail["redirects"] = redirects
	if notFollowed != "" {
		out.Detail["redirect_not_followed"] = notFollowed
	}
	out.Metrics = append(tm.metrics(),
		Metric{Name: "http.duration_ms", Value: msFloat(total)},
		Metric{Name: "http.status_code", Value: float64(resp.StatusCode)},
	)
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		out.Metrics = append(out.Metrics, certExpiry(resp.TLS.PeerCertificates[0], out.Detail))
	}

	var reason string
	switch {
	case !statusExpected(resp.StatusCode, st.ExpectedStatus):
		reason = fmt.Sprintf("status %d, expected %s", resp.StatusCode, expectedStatusText(st.ExpectedStatus))
	case readErr != nil:
		reason = "reading the body: " + netReason(readErr, c.Timeout)
	case st.BodyContains != "" && !bytes.Contains(body, []byte(st.BodyContains)):
		reason = fmt.Sprintf("body does not contain %q", st.BodyContains)
	case bodyRE != nil && !bodyRE.Match(body):
		reason = fmt.Sprintf("body does not match /%s/", st.BodyRegex)
	}
	if reason != "" {
		if truncated {
			reason += " (only the first 1 MiB was read)"
		}
		out.Up, out.Reason = false, reason
	}
	return out
}

// httpFailure is the outcome of a request that got no response.
func httpFailure(err error, timeout time.Duration, tm *httpTimings) Outcome {
	var out Outcome
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, errTooManyRedirects):
		out = down("%s", errors.Unwrap(err)) // drop the url.Error around it
	case errors.As(err, &certErr):
		out = down("%s", certReason(certErr))
	default:
		out = down("%s", netReason(err, timeout))
	}
	out.Detail = tm.detail()
	// A certificate that failed verification still says when it expires; an expired one is exactly
	// what a certificate alert wants to see.
	if certErr != nil && len(certErr.UnverifiedCertificates) > 0 {
		out.Metrics = append(out.Metrics, certExpiry(certErr.UnverifiedCertificates[0], out.Detail))
	}
	return out
}

// certReason says why a server's certificate was refused: expiry in plain words, anything else in
// crypto/x509's ("x509: certificate signed by unknown authority").
func certReason(e *tls.CertificateVerificationError) string {
	var invalid x509.CertificateInvalidError
	if errors.As(e.Err, &invalid) && invalid.Reason == x509.Expired && invalid.Cert != nil {
		if time.Now().After(invalid.Cert.NotAfter) {
			return fmt.Sprintf("TLS certificate has expired (not valid after %s)", invalid.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("TLS certificate is not valid yet (not valid before %s)", invalid.Cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return e.Err.Error()
}

// certExpiry records when the leaf certificate expires and returns the http.cert_days_left metric:
// whole days left, negative once expired.
func certExpiry(leaf *x509.Certificate, detail map[string]any) Metric {
	detail["cert_not_after"] = leaf.NotAfter.UTC().Format(time.RFC3339)
	days := math.Floor(time.Until(leaf.NotAfter).Hours() / 24)
	return Metric{Name: "http.cert_days_left", Value: days}
}

func statusExpected(code int, expected []int) bool {
	if len(expected) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(expected, code)
}

// expectedStatusText reads "2xx", "200" or "200 or 204".
func expectedStatusText(expected []int) string {
	if len(expected) == 0 {
		return "2xx"
	}
	codes := make([]string, len(expected))
	for i, code := range expected {
		codes[i] = strconv.Itoa(code)
	}
	return strings.Join(codes, " or ")
}

// httpTimings adds up, over every request of a probe (redirects included), the time spent in each
// phase: looking names up, connecting, the TLS handshake, and from having a connection to the first
// byte of the response (sending the request and the server's work). Trace hooks may run on other
// goroutines, hence the mutex.
type httpTimings struct {
	mu                                    sync.Mutex
	dnsStart, tlsStart, gotConn           time.Time
	connectStart                          map[string]time.Time
	dns, connect, tlsHandshake, firstByte time.Duration
}

func (t *httpTimings) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { t.mark(&t.dnsStart) },
		DNSDone:  func(httptrace.DNSDoneInfo) { t.add(&t.dns, &t.dnsStart) },
		// Several addresses may be tried at once (IPv6 and IPv4); only the one that connects counts.
		ConnectStart: func(_, addr string) {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.connectStart == nil {
				t.connectStart = map[string]time.Time{}
			}
			t.connectStart[addr] = time.Now()
		},
		ConnectDone: func(_, addr string, err error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			if start, ok := t.connectStart[addr]; ok && err == nil {
				t.connect += time.Since(start)
			}
			delete(t.connectStart, addr)
		},
		TLSHandshakeStart:    func() { t.mark(&t.tlsStart) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { t.add(&t.tlsHandshake, &t.tlsStart) },
		GotConn:              func(httptrace.GotConnInfo) { t.mark(&t.gotConn) },
		GotFirstResponseByte: func() { t.add(&t.firstByte, &t.gotConn) },
	}
}

func (t *httpTimings) mark(start *time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*start = time.Now()
}

func (t *httpTimings) add(total *time.Duration, start *time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !start.IsZero() {
		*total += time.Since(*start)
		*start = time.Time{}
	}
}

func (t *httpTimings) detail() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return map[string]any{
		"dns_ms":        msFloat(t.dns),
		"connect_ms":    msFloat(t.connect),
		"tls_ms":        msFloat(t.tlsHandshake),
		"first_byte_ms": msFloat(t.firstByte),
	}
}

func (t *httpTimings) metrics() []Metric {
	t.mu.Lock()
	defer t.mu.Unlock()
	return []Metric{
		{Name: "http.dns_ms", Value: msFloat(t.dns)},
		{Name: "http.connect_ms", Value: msFloat(t.connect)},
		{Name: "http.tls_ms", Value: msFloat(t.tlsHandshake)},
		{Name: "http.first_byte_ms", Value: msFloat(t.firstByte)},
	}
}

// carriesSecrets reports whether a check sends anything of its own beyond the request line: headers
// other than Host, or a body.
func carriesSecrets(st HTTPSettings) bool {
	for name := range st.Headers {
		if !strings.EqualFold(name, "Host") {
			return true
		}
	}
	return st.Body != ""
}

// sameOrigin reports whether two URLs share scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

package api_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
)

// logBuffer collects a handler's JSON log lines; handlers write from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// loginFrom tries a login with a wrong password, sending forwarded as X-Forwarded-For.
func (w *world) loginFrom(t *testing.T, email, forwarded string) response {
	t.Helper()
	req, err := http.NewRequest("POST", w.srv.URL+"/api/v1/auth/login",
		strings.NewReader(`{"email":"`+email+`","password":"not-the-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", forwarded)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return response{status: resp.StatusCode, header: resp.Header}
}

// X-Forwarded-For counts only from a configured proxy: from anyone else it neither changes the address
// that rate limits key on nor the address the access log records.
func TestForwardedForIsTrustedOnlyFromConfiguredProxies(t *testing.T) {
	limits := testLimits
	limits.AddressRate, limits.AddressBurst = 1.0/3600, 2
	for _, trusted := range []bool{false, true} {
		t.Run("trusted="+strconv.FormatBool(trusted), func(t *testing.T) {
			logs := &logBuffer{}
			w := newWorldCustom(t, db.FlavorPostgres, limits, func(d *api.Deps) {
				d.Log = slog.New(slog.NewJSONHandler(logs, nil))
				if trusted {
					d.Config.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
			})
			// Each attempt names another account, so only the per-address limit can stop it.
			var statuses []int
			for i := range 3 {
				got := w.loginFrom(t, "nobody"+strconv.Itoa(i)+"@x.example", "203.0.113."+strconv.Itoa(i+1))
				statuses = append(statuses, got.status)
			}
			if trusted {
				if statuses[2] != http.StatusUnauthorized {
					t.Errorf("three addresses behind a trusted proxy: %v, want each answered on its own (401)", statuses)
				}
				if !strings.Contains(logs.String(), `"remote":"203.0.113.3"`) {
					t.Errorf("the access log does not record the forwarded address:\n%s", logs.String())
				}
				return
			}
			if statuses[2] != http.StatusTooManyRequests {
				t.Errorf("forged X-Forwarded-For from an untrusted peer: %v, want the third attempt limited (429)", statuses)
			}
			if strings.Contains(logs.String(), "203.0.113.") || !strings.Contains(logs.String(), `"remote":"127.0.0.1"`) {
				t.Errorf("the access log records a forged address, or not the peer's:\n%s", logs.String())
			}
		})
	}
}

// hangGuard bounds how long a test waits for the server to act; it is never what a test waits for.
const hangGuard = 30 * time.Second

// dialFrom opens a connection to addr from the loopback address local (127.0.0.1, 127.0.0.2, …).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(hangGuard)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// clientFrom is an HTTP client whose connections come from the loopback address local.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: hangGuard}
}

// A client that stalls in its headers, in its body, or between requests is disconnected once the
// server's timeouts pass, instead of holding a connection and a goroutine for as long as it likes.
func TestSlowAndIdleClientsAreCutOff(t *testing.T) {
	w := newWorld(t, testLimits)
	srv := httptest.NewUnstartedServer(w.engine)
	srv.Config = api.NewHTTPServer(w.engine, api.HTTPTimeouts{ReadHeader: 200 * time.Millisecond,
		Read: 300 * time.Millisecond, Idle: 300 * time.Millisecond})
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	cases := []struct {
		name, send string
		answered   bool // a complete request the server answers before the connection idles
	}{
		{"headers never end", "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", false},
		{"body stalls", "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", false},
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dialFrom(t, "127.0.0.1", addr)
			if _, err := io.WriteString(conn, c.send); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			if c.answered {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("GET /healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
				}
			}
			// Whatever the server answers first, it then closes the connection.
			if _, err := io.Copy(io.Discard, r); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server kept the connection open for %s", hangGuard)
			}
		})
	}
}

// heldLogin sends a login's headers with "Expect: 100-continue" and waits for "100 Continue", which the
// server sends when the handler starts reading the body: the request is then in progress, and stays so
// until finish sends the body.
type heldLogin struct {
	conn net.Conn
	r    *bufio.Reader
	body string
}

func holdLogin(t *testing.T, local, addr string) *heldLogin {
	t.Helper()
	h := &heldLogin{conn: dialFrom(t, local, addr), body: `{"email":"held@x.example","password":"not-the-password"}`}
	h.r = bufio.NewReader(h.conn)
	if _, err := io.WriteString(h.conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Expect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(h.body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return h
}

// interim reads the server's first answer line: "100 Continue" when the handler reads the body.
func (h *heldLogin) interim(t *testing.T) string {
	t.Helper()
	line, err := h.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, " 100 ") {
		if _, err := h.r.ReadString('\n'); err != nil { // the blank line that ends the interim answer
			t.Fatal(err)
		}
	}
	return strings.TrimSpace(line)
}

func (h *heldLogin) finish(t *testing.T) int {
	t.Helper()
	if _, err := io.WriteString(h.conn, h.body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(h.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Requests in progress from one address on the routes that need no credential are capped, so slow
// clients of one address cannot hold the server; other addresses and authenticated routes go on.
func TestConcurrentPublicRequestsPerAddressAreCapped(t *testing.T) {
	limits := testLimits
	limits.AddressConcurrency = 2
	w := newWorldCustom(t, db.FlavorPostgres, limits, func(*api.Deps) {})
	addr := w.srv.Listener.Addr().String()
	var held []*heldLogin
	for range 2 {
		h := holdLogin(t, "127.0.0.1", addr)
		if got := h.interim(t); !strings.Contains(got, " 100 ") {
			t.Fatalf("a held login answered %q, want 100 Continue", got)
		}
		held = append(held, h)
	}
	for _, route := range []struct{ method, path, body string }{
		{"POST", "/api/v1/auth/login", `{"email":"x@x.example","password":"not-the-password"}`},
		{"POST", "/api/v1/auth/accept-invite", `{"token":"iwi_nope","password":"not-the-password"}`},
		{"POST", "/api/v1/auth/refresh", `{"refresh_token":"iwr_nope"}`},
		{"GET", "/api/v1/operator/tenants", ""},
	} {
		got := w.call(t, route.method, route.path, "", route.body)
		if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with two requests of this address in progress: %d %s, want 429 with Retry-After",
				route.method, route.path, got.status, got.raw)
		}
	}
	w.call(t, "GET", "/api/v1/hosts", w.a.tokens["viewer"], nil).must(t, http.StatusOK)
	req, _ := http.NewRequestWithContext(context.Background(), "POST", w.srv.URL+"/api/v1/auth/login",
		strings.NewReader(`{"email":"x@x.example","password":"not-the-password"}`))
	if resp, err := clientFrom("127.0.0.2").Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a login from another address: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	if status := held[0].finish(t); status != http.StatusUnauthorized {
		t.Fatalf("the held login, finished: %d, want 401", status)
	}
	if got := w.loginFrom(t, "x@x.example", ""); got.status != http.StatusUnauthorized {
		t.Fatalf("a login once a held one finished: %d, want 401", got.status)
	}
}

// An address over its rate is refused before the server reads the body: a client that announces its
// body with "Expect: 100-continue" is answered 429 without ever being asked for it.
func TestLoginRateLimitComesBeforeTheBody(t *testing.T) {
	limits := testLimits
	limits.LoginRate, limits.LoginBurst = 1.0/3600, 1
	limits.AddressRate, limits.AddressBurst = 1.0/3600, 1
	w := newWorldCustom(t, db.FlavorPostgres, limits, func(*api.Deps) {})
	w.loginFrom(t, "first@x.example", "").must(t, http.StatusUnauthorized)
	h := holdLogin(t, "127.0.0.1", w.srv.Listener.Addr().String())
	if got := h.interim(t); !strings.Contains(got, " 429 ") {
		t.Fatalf("a login over the address's rate answered %q first, want 429 before the body", got)
	}
}

// loginAs tries email and password from the loopback address local.
func (w *world) loginAs(t *testing.T, local, email, password string) int {
	t.Helper()
	body, _ := jsonMarshal(map[string]any{"email": email, "password": password})
	resp, err := clientFrom(local).Post(w.srv.URL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Password guessing from one address slows down that address only: the account's owner, from another
// address, still logs in. Only many addresses together meet the account's own, much higher bound.
func TestLoginThrottleDoesNotLockOutTheOwner(t *testing.T) {
	limits := testLimits
	limits.LoginRate, limits.LoginBurst = 1.0/3600, 3
	limits.LoginAccountRate, limits.LoginAccountBurst = 1.0/3600, 6
	w := newWorldCustom(t, db.FlavorPostgres, limits, func(*api.Deps) {})
	victim := w.a.emails["viewer"]
	var attacker []int
	for range 5 {
		attacker = append(attacker, w.loginAs(t, "127.0.0.1", victim, "guess-guess-guess"))
	}
	if attacker[2] != http.StatusUnauthorized || attacker[4] != http.StatusTooManyRequests {
		t.Fatalf("guesses from one address: %v, want 401 up to the per-address bound, then 429", attacker)
	}
	if got := w.loginAs(t, "127.0.0.2", victim, w.a.pass["viewer"]); got != http.StatusOK {
		t.Fatalf("the owner's login from another address while one address guesses: %d, want 200", got)
	}
	// Guesses from two more addresses reach the account's bound of 6 attempts.
	w.loginAs(t, "127.0.0.3", victim, "guess-guess-guess")
	w.loginAs(t, "127.0.0.3", victim, "guess-guess-guess")
	if got := w.loginAs(t, "127.0.0.4", victim, "guess-guess-guess"); got != http.StatusTooManyRequests {
		t.Fatalf("the 7th attempt at one account from four addresses: %d, want 429", got)
	}
}

// The operator's routes are limited per address like every route that needs no credential.
func TestOperatorRoutesAreRateLimited(t *testing.T) {
	limits := testLimits
	limits.AddressRate, limits.AddressBurst = 1.0/3600, 3
	w := newWorldCustom(t, db.FlavorPostgres, limits, func(*api.Deps) {})
	var statuses []int
	for i := range 4 {
		statuses = append(statuses, w.call(t, "GET", "/api/v1/operator/tenants", "wrong-operator-token-"+strconv.Itoa(i), nil).status)
	}
	if !slices.Equal(statuses, []int{401, 401, 401, 429}) {
		t.Fatalf("operator token guesses: %v, want 401 ×3 then 429", statuses)
	}
}

// Passwords follow NIST SP 800-63B: 10 to 256 characters, not a common password, not one character or a
// short pattern repeated, not the email. Every place that sets a password applies it.
func TestWeakPasswordsAreRefusedEverywhere(t *testing.T) {
	w := newWorld(t, testLimits)
	viewer := w.a.tokens["viewer"]
	for _, weak := range []string{"aaaaaaaaaaaa", "password123", "Password2024!", "abcabcabcabc", "qwertyuiop", "1234567890", "",
		strings.Repeat("x", 257)} {
		// "" stands for the email of the account each case sets the password of.
		inv := w.invite(t, w.a.tokens["admin"], "weak@alpha.example", "viewer")
		got := w.accept(t, inv.str("invite_token"), cmp.Or(weak, "Weak@Alpha.example"))
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"password"`) {
			t.Errorf("accepting with %q: %d %s, want 400 naming password", cmp.Or(weak, "the email"), got.status, got.raw)
		}
		got = w.call(t, "POST", "/api/v1/auth/password", viewer,
			map[string]any{"current_password": w.a.pass["viewer"], "new_password": cmp.Or(weak, w.a.emails["viewer"])})
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"new_password"`) {
			t.Errorf("changing to %q: %d %s, want 400 naming new_password", cmp.Or(weak, "the email"), got.status, got.raw)
		}
		got = w.call(t, "POST", "/api/v1/operator/tenants", operatorToken,
			map[string]any{"name": "Weak tenant", "admin_email": "boss@weak.example", "admin_password": cmp.Or(weak, "boss@weak.example")})
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, "password") {
			t.Errorf("a tenant whose owner's password is %q: %d %s, want 400", cmp.Or(weak, "the email"), got.status, got.raw)
		}
	}
	inv := w.invite(t, w.a.tokens["admin"], "strong@alpha.example", "viewer")
	w.accept(t, inv.str("invite_token"), "a passphrase nobody guesses").must(t, http.StatusOK)
}

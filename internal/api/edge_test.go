package api_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

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
	limits.LoginRate, limits.LoginBurst = 1.0/3600, 2
	for _, trusted := range []bool{false, true} {
		t.Run("trusted="+strconv.FormatBool(trusted), func(t *testing.T) {
			logs := &logBuffer{}
			w := newWorldCustom(t, db.FlavorPostgres, limits, func(d *api.Deps) {
				d.Log = slog.New(slog.NewJSONHandler(logs, nil))
				if trusted {
					d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
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

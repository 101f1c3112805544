package web_test

import (
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/tenant"
	"github.com/infrawatch/infrawatch/internal/web"
)

func get(t *testing.T, h http.Handler, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// The console answers index.html at / and at its client routes, its assets with their types, 404 for an
// asset it does not have, 304 to a revalidation; every answer carries the strict CSP.
func TestHandlerServesTheConsole(t *testing.T) {
	h := web.New()
	for _, path := range []string{"/", "/hosts", "/hosts/12", "/checks/3", "/settings", "/login"} {
		r := get(t, h, path)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body(t, r), `<script type="module" src="/assets/js/main.js">`) {
			t.Errorf("GET %s: %d %s, want index.html", path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	for path, ctype := range map[string]string{"/assets/js/main.js": "text/javascript", "/assets/app.css": "text/css",
		"/assets/vendor/uplot/uPlot.esm.js": "text/javascript", "/assets/vendor/uplot/uPlot.min.css": "text/css"} {
		r := get(t, h, path)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q, want 200 %s", path, r.StatusCode, r.Header.Get("Content-Type"), ctype)
		}
		if r.Header.Get("Cache-Control") != "no-cache" || r.Header.Get("ETag") == "" {
			t.Errorf("GET %s: Cache-Control %q, ETag %q: want no-cache with an ETag", path, r.Header.Get("Cache-Control"), r.Header.Get("ETag"))
		}
		if again := get(t, h, path, "If-None-Match", r.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, again.StatusCode)
		}
	}
	if r := get(t, h, "/assets/js/nope.js"); r.StatusCode != http.StatusNotFound {
		t.Errorf("a missing asset: %d, want 404", r.StatusCode)
	}
	r := get(t, h, "/")
	for name, want := range map[string]string{"Content-Security-Policy": web.ContentSecurityPolicy,
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for _, directive := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(web.ContentSecurityPolicy, directive) {
			t.Errorf("the CSP lacks %s", directive)
		}
	}
	if strings.Contains(web.ContentSecurityPolicy, "unsafe") {
		t.Errorf("the CSP allows something unsafe: %s", web.ContentSecurityPolicy)
	}
}

// The CSP holds only if the files need nothing it forbids: no inline script or style in the markup, no
// inline event handlers, no eval, no other origin. Checked on the files themselves.
func TestAssetsNeedNothingTheCSPForbids(t *testing.T) {
	root := "static"
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<script>`), regexp.MustCompile(`<script(\s[^>]*)?>[^<]+</script>`), regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle="`), regexp.MustCompile(`\son[a-z]+="`),
	}
	remote := regexp.MustCompile(`(src|href)="(https?:)?//`)
	ourCode := regexp.MustCompile(`\beval\(|new Function\(|innerHTML|outerHTML|insertAdjacentHTML|document\.write|localStorage\.setItem`)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(raw)
		switch {
		case strings.HasSuffix(p, ".html"):
			for _, re := range inline {
				if re.MatchString(s) {
					t.Errorf("%s has inline %s, which the CSP refuses", p, re)
				}
			}
			if remote.MatchString(s) {
				t.Errorf("%s loads from another origin", p)
			}
		case strings.HasSuffix(p, ".js") && !strings.Contains(p, "vendor"):
			if m := ourCode.FindString(s); m != "" {
				t.Errorf("%s uses %s: build elements with dom.js's h, keep tokens out of localStorage", p, m)
			}
			if strings.Contains(s, "http://") || strings.Contains(s, "https://") {
				t.Errorf("%s names another origin", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Mounted in the API handler, the console is the fallback of GET and HEAD only: API routes keep their
// answers, unknown API paths stay problem+json 404s, and a process without the api role (or without the
// console) serves none of it.
func TestConsoleBehindTheAPI(t *testing.T) {
	engine := func(serveAPI bool, console http.Handler) http.Handler {
		return api.NewHandler(api.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: api.NewRegistry(),
			Auth: &auth.Service{}, Ingest: &ingest.Service{}, Operator: &tenant.Operator{}, ServeAPI: serveAPI, Console: console})
	}
	h := engine(true, web.New())
	if r := get(t, h, "/hosts/7"); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("a client route: %d %s, want the console", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/api/v1/nope", "/api/v1/hosts", "/oauth/nope", "/api/v2/nope"} {
		r := get(t, h, path)
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") || r.Header.Get("Content-Security-Policy") != "" {
			t.Errorf("GET %s answered by the console (%d %s)", path, r.StatusCode, ct)
		}
	}
	if r := get(t, h, "/openapi.json"); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("/openapi.json: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	req := httptest.NewRequest("POST", "/hosts", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Header().Get("Content-Type"), "problem+json") {
		t.Errorf("POST /hosts: %d %s, want the API's 404", rec.Code, rec.Header().Get("Content-Type"))
	}
	for name, h := range map[string]http.Handler{"without the api role": engine(false, web.New()), "without the console": engine(true, nil)} {
		if r := get(t, h, "/"); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: GET / answers %d, want 404", name, r.StatusCode)
		}
	}
}

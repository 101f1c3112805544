package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/poller"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/stream"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

const operatorToken = "operator-secret-for-tests"

// generous limits, so that only the rate-limit test meets them
var testLimits = api.RateLimits{TenantRate: 1e6, TenantBurst: 1e6, CredentialRate: 1e6, CredentialBurst: 1e6,
	LoginRate: 1e6, LoginBurst: 1e6, LoginAccountRate: 1e6, LoginAccountBurst: 1e6, AddressRate: 1e6, AddressBurst: 1e6,
	AddressConcurrency: 1000}

// world is a running API with two tenants, A and B, each with a user of every role.
type world struct {
	d      *dbtest.DB
	engine *gin.Engine
	srv    *httptest.Server
	svc    *auth.Service
	tokens *auth.Tokens
	a, b   *tenantWorld
	// hub is the live stream's hub, at most testStreamsPerTenant streams per tenant.
	hub *stream.Hub
	// guard is the handler's and the prober's SSRF guard, allowing loopback; a test may switch it to SaaS mode.
	guard *checks.Guard
	// deps built engine, for tests that build another handler on the same database and services.
	deps api.Deps
	// pushed is signalled after every POST srv answered, without blocking: one signal waits at most, so
	// a test that checks what pushes stored, then waits on pushed, misses none (waitForPush).
	pushed chan struct{}
}

type tenantWorld struct {
	id     uuid.UUID
	users  map[string]uuid.UUID // role → user id
	tokens map[string]string    // role → access token
	pass   map[string]string    // role → password
	emails map[string]string    // role → email
}

// newWorld builds a world on the postgres flavor, for tests that do not touch time series.
func newWorld(t *testing.T, limits api.RateLimits) *world {
	t.Helper()
	return newWorldOn(t, db.FlavorPostgres, limits)
}

// newWorldOn builds a world on the given storage flavor.
func newWorldOn(t *testing.T, flavor db.Flavor, limits api.RateLimits) *world {
	t.Helper()
	return newWorldCustom(t, flavor, limits, func(*api.Deps) {})
}

// newWorldCustom builds a world whose handler dependencies configure adjusts (trusted proxies, a log of
// its own, …) before the handler is built.
func newWorldCustom(t *testing.T, flavor db.Flavor, limits api.RateLimits, configure func(*api.Deps)) *world {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t, flavor)
	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, d.System())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(d.System(), tokens)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	registry := api.NewRegistry()
	ingester := ingest.NewService(ingest.Config{}, d.Pool, log, registry)
	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { ingester.Run(runCtx); close(stopped) }()
	t.Cleanup(func() { stop(); <-stopped })
	hub := stream.New(stream.Config{MaxPerTenant: testStreamsPerTenant}, d.Pool, log, registry)
	hubDone := make(chan struct{})
	go func() { hub.Run(runCtx); close(hubDone) }()
	t.Cleanup(func() { hub.Close(); <-hubDone })
	// Tests probe loopback only; the guard's SaaS mode has tests of its own.
	guard := &checks.Guard{AllowPrivate: true}
	// BI logins connect to the test's own database, as its operator would announce it.
	dbURL, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	biService, err := bi.NewService(bi.Config{PublicDSN: "postgres://" + dbURL.Host + dbURL.Path + "?sslmode=disable"}, d.System())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.Parse(dbtest.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := notify.NewSender(notify.Config{PublicURL: "https://iw.example.com"}, guard, keys, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	deps := api.Deps{
		Log:      log,
		Tenants:  db.NewTenantRunner(d.Pool),
		Auth:     svc,
		Ingest:   ingester,
		Checks:   poller.NewRunner(db.NewSystem(d.Pool), checks.NewProber(guard), ingester, keys, log),
		Guard:    guard,
		Secrets:  keys,
		Channels: notify.NewTester(d.System(), sender),
		Operator: tenant.NewOperator(d.System()),
		BI:       biService,
		ServeAPI: true,
		Stream:   hub,
		Health:   db.NewHealth(d.Pool),
		Registry: registry,
		Config: api.Config{OperatorToken: operatorToken, Rates: limits,
			Stream: api.StreamConfig{Heartbeat: testHeartbeat}},

		StorageHealth: maintenance.NewHealth(d.System()), // as every api process reads it
	}
	configure(&deps)
	engine := api.NewHandler(deps)
	w := &world{d: d, engine: engine, svc: svc, tokens: tokens, guard: guard, hub: hub, deps: deps, pushed: make(chan struct{}, 1)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		engine.ServeHTTP(rw, r)
		if r.Method == http.MethodPost {
			select {
			case w.pushed <- struct{}{}:
			default:
			}
		}
	}))
	t.Cleanup(w.srv.Close)
	w.a = w.newTenant(t, "alpha")
	w.b = w.newTenant(t, "bravo")
	return w
}

// waitForPush waits until srv answers another POST, and fails the test after a minute: a hang guard
// for clients (the agent, Prometheus) that push on their own.
func (w *world) waitForPush(t *testing.T, what string) {
	t.Helper()
	select {
	case <-w.pushed:
	case <-time.After(time.Minute):
		t.Fatalf("no push answered in a minute: %s", what)
	}
}

func (w *world) newTenant(t *testing.T, slug string) *tenantWorld {
	t.Helper()
	ctx := context.Background()
	owner := "owner@" + slug + ".example"
	created, err := tenant.Create(ctx, w.d.System(), tenant.NewTenant{Name: slug, AdminEmail: owner, AdminPassword: "owner-password-" + slug})
	if err != nil {
		t.Fatal(err)
	}
	tw := &tenantWorld{id: created.TenantID, users: map[string]uuid.UUID{}, tokens: map[string]string{},
		pass: map[string]string{}, emails: map[string]string{}}
	tw.pass["owner"], tw.emails["owner"] = "owner-password-"+slug, owner
	var ownerID uuid.UUID
	if err := w.d.Pool.QueryRow(ctx, "SELECT id FROM app.users WHERE email = $1", owner).Scan(&ownerID); err != nil {
		t.Fatal(err)
	}
	tw.users["owner"] = ownerID
	// The other members join as everyone does: invited by the owner, each accepts with a password of their own.
	ownerPrincipal := auth.Principal{TenantID: tw.id, Kind: auth.ActorUser, UserID: ownerID, Role: "owner"}
	for _, role := range []string{"viewer", "editor", "admin"} {
		p := role + "-password-" + slug
		email := role + "@" + slug + ".example"
		var token string
		if err := db.NewTenantRunner(w.d.Pool).WithTenant(ctx, tw.id, func(q *dbsqlc.Queries) (err error) {
			_, token, err = auth.Invite(ctx, q, ownerPrincipal, auth.NewInvitation{Email: email, Role: role})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		accepted, err := w.svc.AcceptInvite(ctx, auth.Acceptance{Token: token, Password: p})
		if err != nil {
			t.Fatal(err)
		}
		tw.users[role], tw.pass[role], tw.emails[role] = accepted.UserID, p, email
	}
	for _, role := range auth.Roles {
		pair, err := w.svc.Login(ctx, tw.emails[role], tw.pass[role], &tw.id)
		if err != nil {
			t.Fatalf("login %s: %v", role, err)
		}
		tw.tokens[role] = pair.AccessToken
	}
	return tw
}

// response is an answer with its body decoded loosely.
type response struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (r response) str(key string) string { s, _ := r.json[key].(string); return s }

// call sends a JSON request with a bearer credential ("" for none).
func (w *world) call(t *testing.T, method, path, credential string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
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

// must fails the test unless the answer has the wanted status.
func (r response) must(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

func (r response) id(t *testing.T) string {
	t.Helper()
	switch v := r.json["id"].(type) {
	case float64:
		return strings.TrimSuffix(strings.TrimSuffix(jsonNumber(v), ".0"), ".")
	case string:
		return v
	}
	t.Fatalf("no id in %s", r.raw)
	return ""
}

func jsonNumber(v float64) string { b, _ := json.Marshal(v); return string(b) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

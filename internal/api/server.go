// Package api serves infrawatch over HTTP: health and readiness probes, Prometheus metrics, and the
// REST API under /api/v1. Handlers reach the database only through a *db.TenantRunner, never the
// owner's pool; errors leave as application/problem+json (RFC 9457), and no panic reaches a client.
package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/promql"
	"github.com/infrawatch/infrawatch/internal/query"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/stream"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// Deps are what the HTTP server needs from the process.
type Deps struct {
	Log *slog.Logger
	// Tenants is the only database access request handlers get.
	Tenants *db.TenantRunner
	// Auth checks credentials and issues tokens (system work behind narrow methods).
	Auth *auth.Service
	// Ingest validates and writes pushed metrics and logs (system work, tenant stamped from the credential).
	// Nil when the process does not run the ingest role: the push routes then answer 404.
	Ingest *ingest.Service
	// Checks runs a check on request (POST /checks/{id}/run); nil makes that route answer 503.
	Checks CheckRunner
	// Guard refuses check targets the poller must not reach, and channel URLs, when they are saved.
	Guard *checks.Guard
	// Secrets seals the secrets of checks and channels when they are saved, and opens them for updates
	// that keep a stored secret.
	Secrets *secrets.Keyring
	// Channels sends a channel's test message (POST /channels/{id}/test); nil makes that route answer 503.
	Channels ChannelTester
	// Invitations emails invitations when it can (an SMTP relay is configured); then the answer to an
	// invitation no longer carries its token. Nil: tokens are answered.
	Invitations InvitationMailer
	// Backtests runs alert rules that are not saved over a tenant's history (POST
	// /alert-rules/backtest); nil makes that route answer 503.
	Backtests Backtester
	// Operator creates, suspends and deletes tenants for the platform operator.
	Operator *tenant.Operator
	// StorageHealth tells the operator how the storage jobs are doing (GET /api/v1/operator/health); nil
	// makes that route answer 503.
	StorageHealth *maintenance.Health
	// BI issues, rotates and revokes tenants' BI logins (system work, the tenant a parameter); nil makes
	// those routes answer 503. Lists read through Tenants.
	BI *bi.Service
	// ServeAPI is whether the process runs the api role: the REST API (everything under /api/v1 but the
	// push routes, /oauth/token, the operator's routes and the live stream). Without it those answer
	// 404, as routes that do not exist; health, readiness, metrics and /openapi.json always answer.
	ServeAPI bool
	// Console serves the web console (internal/web) for GET and HEAD of every path the API does not
	// have outside /api/ and /oauth/; nil, or a process without the api role, serves none. API routes
	// keep precedence: the console is only the fallback of unknown paths.
	Console http.Handler
	// Stream is the process's live-stream hub; nil makes GET /api/v1/stream answer 503.
	Stream *stream.Hub
	// Health tells readiness. Handlers never see it.
	Health *db.Health
	// Registry collects the process's metrics; /metrics serves it.
	Registry *prometheus.Registry
	// PromQL evaluates PromQL and answers the series listings of /prometheus/api/v1; nil: one with the
	// default configuration over Tenants.
	PromQL *promql.Engine
	// Config tunes the server; zero fields take DefaultConfig's.
	Config Config
}

// NewRegistry returns a metrics registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// server holds what handlers share.
type server struct {
	log               *slog.Logger
	tenants           *db.TenantRunner
	auth              *auth.Service
	ingest            *ingest.Service
	checks            CheckRunner
	backtests         Backtester
	guard             *checks.Guard
	secrets           *secrets.Keyring
	channels          ChannelTester
	invitations       InvitationMailer
	operator          *tenant.Operator
	storageHealth     *maintenance.Health
	bi                *bi.Service
	operatorTokenHash []byte
	limits            *limiters
	query             *query.Planner
	promql            *promql.Engine
	heavy             *heavyGate
	hub               *stream.Hub
	streamCfg         StreamConfig
}

// NewHandler builds the HTTP handler: middleware, probes, metrics and the routes of the process's roles.
func NewHandler(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	cfg := d.Config
	// gin believes X-Forwarded-For from every peer unless told otherwise; only the configured proxies may
	// name the client's address, which rate limits key on and the access log records.
	proxies := make([]string, 0, len(cfg.TrustedProxies))
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	if err := r.SetTrustedProxies(proxies); err != nil {
		panic(fmt.Sprintf("trusted proxies %v: %v", proxies, err)) // netip.Prefix always prints a valid CIDR
	}
	m := newHTTPMetrics(d.Registry)
	r.Use(requestID(), accessLog(d.Log, m), recoverProblem(d.Log), textParams())
	console := d.Console
	if !d.ServeAPI {
		console = nil
	}
	r.NoRoute(func(c *gin.Context) {
		if console != nil && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) &&
			isConsolePath(c.Request.URL.Path) {
			console.ServeHTTP(c.Writer, c.Request)
			return
		}
		writeProblem(c, http.StatusNotFound, "no such route", "")
	})
	r.NoMethod(func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, "method not allowed on this route", "")
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", readyz(d.Health))
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry})))
	r.GET("/openapi.json", serveOpenAPI)

	if d.Auth == nil {
		return r // probes only: the identity service is not wired (tests of the probes)
	}
	guard := d.Guard
	if guard == nil {
		guard = &checks.Guard{} // SaaS mode: only public targets
	}
	poolSize := 0
	if d.Tenants != nil { // tests of the routes alone wire no database
		poolSize = d.Tenants.PoolSize()
	}
	s := &server{log: d.Log, tenants: d.Tenants, auth: d.Auth, ingest: d.Ingest, checks: d.Checks, backtests: d.Backtests,
		guard: guard, secrets: d.Secrets, channels: d.Channels, invitations: d.Invitations,
		operator: d.Operator, storageHealth: d.StorageHealth, bi: d.BI, limits: newLimiters(cfg.Rates),
		query: query.New(d.Tenants, cfg.Query), heavy: newHeavyGate(cfg.HeavyReads.withDefaults(poolSize), d.Registry),
		hub: d.Stream, streamCfg: cfg.Stream.withDefaults()}
	if s.promql = d.PromQL; s.promql == nil {
		s.promql = promql.New(d.Tenants, promql.DefaultConfig(), d.Log, nil)
	}
	if cfg.OperatorToken != "" {
		sum := sha256.Sum256([]byte(cfg.OperatorToken))
		s.operatorTokenHash = sum[:]
	}
	s.routes(r, d.ServeAPI)
	return r
}

// isConsolePath says whether an unknown path may be the web console's (one of its client routes or
// assets): anything outside /api/ and /oauth/, whose unknown paths stay problem+json 404s for API clients.
func isConsolePath(urlPath string) bool {
	return !strings.HasPrefix(urlPath, "/api/") && urlPath != "/api" &&
		!strings.HasPrefix(urlPath, "/oauth/") && urlPath != "/oauth"
}

// readyz answers 200 when the database answers, its schema is the one this binary expects and it takes
// writes: every role of this process writes (ingest, polling, maintenance, and the API's changes), so a
// standby in recovery or a database made read-only (a failover, an operator, a full disk) is not ready.
func readyz(health *db.Health) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		st, err := db.Status{}, errors.New("no database wired")
		if health != nil {
			st, err = health.Check(ctx)
		}
		switch {
		case err != nil:
			writeProblem(c, http.StatusServiceUnavailable, "database unavailable", "the database did not answer")
		case st.Schema.Dirty:
			writeProblem(c, http.StatusServiceUnavailable, "schema dirty",
				"a migration failed half-way; see `infrawatch migrate status`")
		case st.Schema.Version != st.Schema.Latest:
			writeProblem(c, http.StatusServiceUnavailable, "schema not current",
				"the schema is at version "+uitoa(st.Schema.Version)+", this binary needs "+uitoa(st.Schema.Latest)+"; run `infrawatch migrate up`")
		case st.InRecovery:
			writeProblem(c, http.StatusServiceUnavailable, "database read-only",
				"the database server is a standby in recovery; point --database-url at the primary")
		case st.ReadOnly || st.NewConnectionsReadOnly:
			writeProblem(c, http.StatusServiceUnavailable, "database read-only",
				"the database takes no writes (default_transaction_read_only is on for this database or login); "+
					"free disk space or turn it off, then new connections write again")
		default:
			c.JSON(http.StatusOK, gin.H{"status": "ready", "schema_version": st.Schema.Version, "flavor": st.Schema.Flavor})
		}
	}
}

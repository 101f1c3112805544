package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/poller"
	"github.com/infrawatch/infrawatch/internal/stream"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// Roles a serve process can take. Every role is stateless; run any number of replicas of each.
var allRoles = []string{"api", "ingest", "poller", "alerter", "scheduler"}

// serveConfig is what `infrawatch serve` (and `infrawatch dev`) run with.
type serveConfig struct {
	Listen          string
	DatabaseURL     string
	Roles           []string
	LogLevel        string
	ShutdownTimeout time.Duration
	// API tunes the HTTP server: timeouts, trusted proxies, the operator token, heavy reads.
	API api.Config
	// MaxConns caps the database pool.
	MaxConns int
	// AllowPrivateTargets lets checks reach loopback, private and link-local addresses (self-hosted
	// mode); off, the poller refuses them (SaaS mode).
	AllowPrivateTargets bool
	// StatementTimeout bounds each statement of a tenant's request (the tenant runner's statement_timeout).
	StatementTimeout time.Duration
	// Poller configures the poller role.
	Poller poller.Config
	// Maintenance configures the scheduler role's storage upkeep: retention and compression.
	Maintenance maintenance.Config
}

func (c serveConfig) Validate() error {
	if c.Listen == "" {
		return errors.New("--listen must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:8080", c.Listen)
	}
	if len(c.Roles) == 0 {
		return errors.New("--roles names no role")
	}
	for _, r := range c.Roles {
		if !slices.Contains(allRoles, r) {
			return fmt.Errorf("--roles: unknown role %q (known: %s)", r, strings.Join(allRoles, ","))
		}
	}
	if c.MaxConns < 4 {
		return fmt.Errorf("--database-max-conns must be at least 4, got %d", c.MaxConns)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout must be positive")
	}
	if err := c.API.Validate(); err != nil {
		return err
	}
	if c.StatementTimeout < 100*time.Millisecond {
		return fmt.Errorf("--statement-timeout must be at least 100ms, got %s", c.StatementTimeout)
	}
	if c.Poller.Concurrency < 1 || c.Poller.TenantConcurrency < 1 {
		return errors.New("--poller-concurrency and --poller-tenant-concurrency must be at least 1")
	}
	if len(c.Poller.Location) > 64 {
		return errors.New("--location must be at most 64 characters")
	}
	if err := c.Maintenance.Validate(); err != nil {
		return fmt.Errorf("--retention-*, --compress-after: %s", strings.TrimPrefix(err.Error(), "maintenance: "))
	}
	return db.Config{URL: c.DatabaseURL}.Validate()
}

func parseRoles(s string) []string {
	if strings.TrimSpace(s) == "" || strings.TrimSpace(s) == "all" {
		return slices.Clone(allRoles)
	}
	var roles []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// addCommonFlags registers the flags every server command shares.
func addCommonFlags(fs *flag.FlagSet, cfg *serveConfig, roles *string) {
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address for the HTTP server (health, metrics and API)")
	fs.StringVar(roles, "roles", "all", "comma-separated roles to run: "+strings.Join(allRoles, ",")+"; all means every role")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second,
		"how long a graceful shutdown waits for requests and workers to finish")
	cfg.API.AddFlags(fs)
	fs.IntVar(&cfg.MaxConns, "database-max-conns", 20,
		"most connections to the database; ingest writers take 2, the rest serve requests and lookups")
	fs.BoolVar(&cfg.AllowPrivateTargets, "allow-private-targets", cfg.AllowPrivateTargets,
		"let checks reach loopback, private and link-local addresses (self-hosted); off, they are refused when a check is saved and on every connection (SaaS)")
	fs.DurationVar(&cfg.StatementTimeout, "statement-timeout", db.DefaultStatementTimeout,
		"longest a statement of a tenant's request may run in the database; past it the request answers 422")
	fs.StringVar(&cfg.Poller.Location, "location", "",
		"poller role: run only checks pinned to this location, besides unpinned ones (empty: unpinned checks only)")
	fs.IntVar(&cfg.Poller.Concurrency, "poller-concurrency", 256, "poller role: most checks running at once in this process")
	fs.IntVar(&cfg.Poller.TenantConcurrency, "poller-tenant-concurrency", 64,
		"poller role: most checks of one tenant running at once in this process")
	r := &cfg.Maintenance.Retention
	r.Samples, r.Samples5m, r.Samples1h, r.Samples1d, r.Logs = 30*day, 90*day, 730*day, 1825*day, 30*day
	cfg.Maintenance.CompressAfter = 7 * day
	fs.Var(days{&r.Samples}, "retention-raw", "how long raw samples and check results are kept (e.g. 30d); older pushes are refused")
	fs.Var(days{&r.Samples5m}, "retention-5m", "how long the 5-minute rollup is kept")
	fs.Var(days{&r.Samples1h}, "retention-1h", "how long the hourly rollups (samples, check availability) are kept")
	fs.Var(days{&r.Samples1d}, "retention-1d", "how long the daily rollups (samples, check availability) are kept")
	fs.Var(days{&r.Logs}, "retention-logs", "how long log lines are kept")
	fs.Var(days{&cfg.Maintenance.CompressAfter}, "compress-after", "age after which raw chunks are compressed (timescale flavor)")
}

const day = 24 * time.Hour

// withRetentionDefaults fills the check-result tiers from the sample tiers they share a flag with.
func (c *serveConfig) withRetentionDefaults() {
	r := &c.Maintenance.Retention
	r.CheckResults, r.CheckResults1h, r.CheckResults1d = r.Samples, r.Samples1h, r.Samples1d
}

func runServe(ctx context.Context, env *environment, args []string) error {
	var cfg serveConfig
	var roles string
	fs := newFlagSet(env, "serve", "serve [flags]")
	addCommonFlags(fs, &cfg, &roles)
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL connection URL of the owning login (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Roles = parseRoles(roles)
	cfg.withRetentionDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := newLogger(env.stderr, cfg.LogLevel, false)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, db.Config{URL: cfg.DatabaseURL, MaxConns: int32(cfg.MaxConns)})
	if err != nil {
		return err
	}
	defer pool.Close()
	return serve(ctx, cfg, pool, log, nil)
}

// serve runs the HTTP server and the workers of the configured roles until ctx ends, then shuts down
// gracefully. ready, if not nil, is called once the listener is open.
func serve(ctx context.Context, cfg serveConfig, pool *pgxpool.Pool, log *slog.Logger, ready func(addr string)) error {
	st, err := db.ReadStatus(ctx, pool)
	if err != nil {
		return err
	}
	if !st.Current() {
		log.Warn("database schema is not current; /readyz reports not ready until `infrawatch migrate up` runs",
			"version", st.Version, "want", st.Latest, "dirty", st.Dirty)
	}

	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, pool)
	if err != nil {
		return fmt.Errorf("load token signing keys: %w", err)
	}
	authService, err := auth.NewService(pool, tokens)
	if err != nil {
		return err
	}
	registry := api.NewRegistry()
	// Pushed samples and the samples checks measure go through one ingest service and its writer.
	samples := ingest.NewService(ingest.Config{RawRetention: cfg.Maintenance.Retention.Samples}, pool, log.With("role", "ingest"), registry)
	var ingester *ingest.Service
	if slices.Contains(cfg.Roles, "ingest") {
		ingester = samples
	}
	guard := &poller.Guard{AllowPrivate: cfg.AllowPrivateTargets}
	runner := poller.NewRunner(pool, poller.NewProber(guard), samples, log.With("role", "poller"))
	var hub *stream.Hub // the live stream's LISTEN connection; without the api role /api/v1/stream answers 404
	if slices.Contains(cfg.Roles, "api") {
		hub = stream.New(stream.Config{}, pool, log.With("role", "api"), registry)
	}
	handler := api.NewHandler(api.Deps{
		Log:      log,
		Tenants:  db.NewTenantRunner(pool).WithStatementTimeout(cfg.StatementTimeout),
		Auth:     authService,
		Ingest:   ingester,
		Checks:   runner,
		Guard:    guard,
		Operator: tenant.NewOperator(pool),
		ServeAPI: slices.Contains(cfg.Roles, "api"),
		Stream:   hub,
		Health:   db.NewHealth(pool),
		Registry: registry,
		Config:   cfg.API,
	})
	srv := api.NewHTTPServer(handler, cfg.API.HTTP)
	if hub != nil {
		srv.RegisterOnShutdown(hub.Close) // streams never go idle: end them as the shutdown begins
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var workers sync.WaitGroup
	// A key rotated by `infrawatch keys rotate` or another replica becomes usable here within a minute.
	workers.Go(func() { reloadKeys(workCtx, tokens, log) })
	// The samples writer stops last, after the HTTP server and the poller, so pushes in flight and the
	// poller's last results are still written.
	writerCtx, stopWriter := context.WithCancel(context.Background())
	defer stopWriter()
	writerDone := make(chan struct{})
	go func() { samples.Run(writerCtx); close(writerDone) }()
	for _, role := range cfg.Roles {
		switch role {
		case "scheduler":
			svc := maintenance.New(cfg.Maintenance, pool, log.With("role", role))
			workers.Go(func() { svc.Run(workCtx) })
		case "ingest":
			// The push routes are part of the HTTP server; their writer runs above.
		case "poller":
			engine := poller.New(cfg.Poller, runner, log.With("role", role), registry)
			workers.Go(func() { engine.Run(workCtx) })
		case "api":
			// The API routes are part of the HTTP server, which every process runs; the stream hub runs here.
			workers.Go(func() { hub.Run(workCtx) })
		default:
			log.Info("role has nothing to run yet", "role", role)
		}
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("infrawatch serving", "addr", ln.Addr().String(), "roles", strings.Join(cfg.Roles, ","), "flavor", st.Flavor)
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if shutErr := srv.Shutdown(shutdownCtx); shutErr != nil && err == nil {
		err = fmt.Errorf("shut down HTTP server: %w", shutErr)
	}
	stopWork()
	done := make(chan struct{})
	go func() { workers.Wait(); stopWriter(); <-writerDone; close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		log.Warn("workers did not stop within the shutdown timeout")
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func reloadKeys(ctx context.Context, tokens *auth.Tokens, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
		if err := tokens.Reload(ctx); err != nil && ctx.Err() == nil {
			log.Warn("reload token signing keys", "err", err)
		}
	}
}

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
	// MaxConns caps the database pool.
	MaxConns int
	// OperatorToken authenticates the platform operator on /api/v1/operator; empty disables those routes.
	OperatorToken string
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
	fs.IntVar(&cfg.MaxConns, "database-max-conns", 20,
		"most connections to the database; ingest writers take 2, the rest serve requests and lookups")
	fs.StringVar(&cfg.OperatorToken, "operator-token", "",
		"secret that authenticates the platform operator on /api/v1/operator (empty: those routes answer 401); prefer the environment variable")
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
	var ingester *ingest.Service
	if slices.Contains(cfg.Roles, "ingest") {
		ingester = ingest.NewService(ingest.Config{}, pool, log.With("role", "ingest"), registry)
	}
	handler := api.NewHandler(api.Deps{
		Log:           log,
		Tenants:       db.NewTenantRunner(pool),
		Auth:          authService,
		Ingest:        ingester,
		Operator:      tenant.NewOperator(pool),
		OperatorToken: cfg.OperatorToken,
		Health:        pool,
		Registry:      registry,
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var workers sync.WaitGroup
	// A key rotated by `infrawatch keys rotate` or another replica becomes usable here within a minute.
	workers.Go(func() { reloadKeys(workCtx, tokens, log) })
	for _, role := range cfg.Roles {
		switch role {
		case "scheduler":
			svc := maintenance.New(maintenance.Config{}, pool, log.With("role", role))
			workers.Go(func() { svc.Run(workCtx) })
		case "ingest":
			// The push routes are part of the HTTP server; the group-commit writer runs here. It stops
			// after the HTTP server, so requests in flight still get their answer.
			workers.Go(func() { ingester.Run(workCtx) })
		case "api":
			// The API routes are part of the HTTP server, which every process runs.
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
	go func() { workers.Wait(); close(done) }()
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

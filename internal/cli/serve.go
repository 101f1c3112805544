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
	"time"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/poller"
	"github.com/infrawatch/infrawatch/internal/promql"
	"github.com/infrawatch/infrawatch/internal/replicas"
	"github.com/infrawatch/infrawatch/internal/reports"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/selfmon"
	"github.com/infrawatch/infrawatch/internal/service"
	"github.com/infrawatch/infrawatch/internal/sla"
	"github.com/infrawatch/infrawatch/internal/stream"
	"github.com/infrawatch/infrawatch/internal/tenant"
	"github.com/infrawatch/infrawatch/internal/traps"
	"github.com/infrawatch/infrawatch/internal/web"
)

// Roles a serve process can take; README § Topology says how many replicas of each may run.
var allRoles = []string{"api", "ingest", "poller", "scheduler", "alerter", "notifier", "traps"}

// serveConfig is what `infrawatch serve` (and `infrawatch dev`) run with. The settings of a package
// are its Config, which registers its own flags with its own defaults.
type serveConfig struct {
	Listen          string
	Roles           []string
	LogLevel        string
	ShutdownTimeout time.Duration
	DB              db.Config
	Maintenance     maintenance.Config
	// API tunes the HTTP server: timeouts, trusted proxies, the operator token, heavy reads.
	API api.Config

	// The checks' settings.
	// AllowPrivateTargets lets checks reach loopback, private and link-local addresses (self-hosted
	// mode); off, the poller refuses them (SaaS mode).
	AllowPrivateTargets bool
	// Poller configures the poller role.
	Poller poller.Config
	// BI says where BI tools connect (--bi-public-dsn) and how often the enforcer of their limits runs.
	BI bi.Config
	// Secrets holds the keys that seal channel and check secrets at rest (--secret-key).
	Secrets secrets.Config
	// Notify configures the channels' sends (links, the SMTP relay) and the notifier role.
	Notify notify.Config
	// Alerter configures the alerter role.
	Alerter alerting.Config
	// Traps configures the traps role's SNMP trap receiver (--snmp-trap-listen).
	Traps traps.Config
	// SelfMonitoring pushes the process's own metrics into a tenant (--self-monitoring-url).
	SelfMonitoring selfmon.Config
	// PromQL bounds the PromQL engine of /prometheus/api/v1 and says whether it reads rollups.
	PromQL promql.Config
	// Console serves the web console at / in processes with the api role (--console).
	Console bool
	// Reports configures the scheduler role's report worker.
	Reports reports.Config
}

// defaultServeConfig is the configuration before flags.
func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:          "127.0.0.1:8080",
		LogLevel:        "info",
		ShutdownTimeout: 20 * time.Second,
		DB:              db.DefaultConfig(),
		Maintenance:     maintenance.DefaultConfig(),
		API:             api.DefaultConfig(),
		Poller:          poller.DefaultConfig(),
		BI:              bi.DefaultConfig(),
		Secrets:         secrets.DefaultConfig(),
		Notify:          notify.DefaultConfig(),
		Alerter:         alerting.DefaultConfig(),
		Traps:           traps.DefaultConfig(),
		SelfMonitoring:  selfmon.DefaultConfig(),
		PromQL:          promql.DefaultConfig(),
		Console:         true,
		Reports:         reports.DefaultConfig(),
	}
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
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout must be positive")
	}
	if err := c.API.Validate(); err != nil {
		return err
	}
	if err := c.Secrets.Validate(); err != nil {
		return err
	}
	if err := c.Notify.Validate(); err != nil {
		return err
	}
	if err := c.Poller.Validate(); err != nil {
		return err
	}
	if err := c.Alerter.Validate(); err != nil {
		return err
	}
	if err := c.Reports.Validate(); err != nil {
		return err
	}
	if err := c.SelfMonitoring.Validate(); err != nil {
		return err
	}
	if err := c.Maintenance.Validate(); err != nil {
		return err
	}
	if err := c.BI.Validate(); err != nil {
		return err
	}
	if err := c.PromQL.Validate(); err != nil {
		return err
	}
	if err := c.Traps.Validate(); err != nil {
		return err
	}
	return c.DB.Validate()
}

// has says whether the process runs role.
func (c serveConfig) has(role string) bool { return slices.Contains(c.Roles, role) }

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

// addFlags registers the flags every server command shares: serve's own, then each package's.
func (c *serveConfig) addFlags(fs *flag.FlagSet, roles *string) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "address for the HTTP server (health, metrics and API)")
	fs.StringVar(roles, "roles", "all", "comma-separated roles to run: "+strings.Join(allRoles, ",")+
		"; all means every role. Every process serves health and metrics; api serves the REST API, ingest the push routes")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout,
		"how long a graceful shutdown waits for requests and workers to finish")
	fs.BoolVar(&c.Console, "console", c.Console,
		"serve the web console at / (with the api role); --console=false serves the API alone")
	c.DB.AddFlags(fs)
	c.Maintenance.AddFlags(fs)
	c.API.AddFlags(fs)

	fs.BoolVar(&c.AllowPrivateTargets, "allow-private-targets", c.AllowPrivateTargets,
		"let checks reach loopback, private and link-local addresses (self-hosted); off, they are refused when a check is saved and on every connection (SaaS)")
	c.Poller.AddFlags(fs)
	c.BI.AddFlags(fs)
	c.Secrets.AddFlags(fs)
	c.Notify.AddFlags(fs)
	c.Alerter.AddFlags(fs)
	c.Traps.AddFlags(fs)
	c.SelfMonitoring.AddFlags(fs)
	c.PromQL.AddFlags(fs)
	c.Reports.AddFlags(fs)
}

func runServe(ctx context.Context, env *environment, args []string) error {
	cfg := defaultServeConfig()
	var roles string
	fs := newFlagSet(env, "serve", "serve [flags]")
	cfg.addFlags(fs, &roles)
	cfg.DB.AddURLFlag(fs)
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
	pool, err := db.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	return serve(ctx, cfg, pool, log, nil)
}

// serve runs the HTTP server and the workers of the configured roles until ctx ends, then shuts down
// gracefully: the HTTP server first, then the workers in the reverse order of their start. ready, if
// not nil, is called once the listener is open and the workers run.
func serve(ctx context.Context, cfg serveConfig, pool *db.Pool, log *slog.Logger, ready func(addr string)) error {
	st, err := db.ReadStatus(ctx, pool)
	if err != nil {
		return err
	}
	if !st.Current() {
		log.Warn("database schema is not current; /readyz reports not ready until `infrawatch migrate up` runs",
			"version", st.Version, "want", st.Latest, "dirty", st.Dirty)
	}

	// The dependencies.
	system := db.NewSystem(pool)
	keys, err := cfg.Secrets.Keyring()
	if err != nil {
		return err
	}
	// Secrets a migration moved out of the checks' settings are sealed before anything reads them; no
	// secret stays in the clear once a server has started.
	if st.Current() {
		sealed, err := secrets.Reseal(ctx, system, keys, true)
		if err != nil {
			return fmt.Errorf("seal the checks' secrets: %w", err)
		}
		if sealed.Checks > 0 {
			log.Info("sealed the secrets of checks that held them in the clear", "checks", sealed.Checks)
		}
	}
	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, system)
	if err != nil {
		return fmt.Errorf("load token signing keys: %w", err)
	}
	authService, err := auth.NewService(system, tokens)
	if err != nil {
		return err
	}
	registry := api.NewRegistry()
	// Pushed samples and the samples checks measure (the poller's, and a check run now through the
	// API) go through one ingest service and its writer. Samples older than the raw retention are
	// refused: maintenance would drop them.
	ingestConfig := ingest.DefaultConfig()
	ingestConfig.RawRetention = cfg.Maintenance.Retention.Samples
	samples := ingest.NewService(ingestConfig, pool, log.With("role", "ingest"), registry)
	guard := &checks.Guard{AllowPrivate: cfg.AllowPrivateTargets}
	biService, err := bi.NewService(cfg.BI, system)
	if err != nil {
		return err
	}
	runner := poller.NewRunner(system, checks.NewProber(guard), samples, keys, log.With("role", "poller"))
	// Channels post to URLs users chose through the same guard as checks.
	sender, err := notify.NewSender(cfg.Notify, guard, keys, log.With("role", "notifier"), registry)
	if err != nil {
		return err
	}

	// The workers, in the order they start; they stop in reverse, so the samples writer, which the
	// push routes, the poller and run-now write through, stops last.
	var workers service.Group
	// The process's row in infrawatch.replicas, first to start and last to stop: while it is there, the
	// ingest replicas divide each tenant's rate among themselves (internal/replicas).
	workers = append(workers, service.Named{Name: "replica heartbeat",
		Service: replicas.NewHeartbeat(system, cfg.Roles, log.With("role", "replicas"))})
	if cfg.has("api") || cfg.has("ingest") || cfg.has("poller") || cfg.has("traps") && cfg.Traps.Listen != "" {
		workers = append(workers, service.Named{Name: "samples writer", Service: samples})
	}
	// A key rotated by `infrawatch keys rotate` or another replica becomes usable here within a minute.
	workers = append(workers, service.Named{Name: "signing key reloader", Service: auth.NewKeyReloader(tokens, log)})
	var hub *stream.Hub // the live stream's LISTEN connection, for the API's /api/v1/stream
	if cfg.has("api") {
		hub = stream.New(stream.DefaultConfig(), pool, log.With("role", "api"), registry)
		workers = append(workers, service.Named{Name: "stream hub", Service: hub})
	}
	if cfg.has("poller") {
		engine := poller.New(cfg.Poller, runner, log.With("role", "poller"), registry)
		workers = append(workers, service.Named{Name: "poller", Service: engine})
	}
	// Any process tells the operator how the storage jobs are doing; the scheduler's processes also
	// export them on /metrics.
	storageHealth := maintenance.NewHealth(system)
	if cfg.has("scheduler") {
		workers = append(workers, service.Named{Name: "maintenance",
			Service: maintenance.New(cfg.Maintenance, system, log.With("role", "scheduler"))})
		registry.MustRegister(storageHealth.Collector())
		// BI logins' sessions past their tenant's limits are ended; idempotent, so every replica may.
		workers = append(workers, service.Named{Name: "bi enforcer",
			Service: bi.NewEnforcer(cfg.BI, system, log.With("role", "scheduler"))})
		workers = append(workers, service.Named{Name: "sla gap settler",
			Service: sla.NewGapSettler(sla.DefaultGapConfig(), system, log.With("role", "scheduler"))})
		// Scheduled SLA reports: one email per report and period, through the notifier's SMTP relay.
		workers = append(workers, service.Named{Name: "report worker",
			Service: reports.NewWorker(cfg.Reports, system, db.NewTenantRunner(pool), sender, log.With("role", "scheduler"))})
	}
	if cfg.has("notifier") {
		workers = append(workers, service.Named{Name: "notifier",
			Service: notify.New(cfg.Notify, system, sender, log.With("role", "notifier"), registry)})
	}
	if cfg.has("alerter") {
		workers = append(workers, service.Named{Name: "alerter",
			Service: alerting.New(cfg.Alerter, system, log.With("role", "alerter"), registry)})
	}

	// SNMP traps become log lines of the tenant whose community or user they carry; stateless, so any
	// number of replicas may listen behind one address.
	if cfg.has("traps") {
		if cfg.Traps.Listen == "" {
			log.Info("no SNMP trap receiver: --snmp-trap-listen is empty", "role", "traps")
		} else {
			workers = append(workers, service.Named{Name: "trap receiver",
				Service: traps.NewReceiver(cfg.Traps, system, samples, keys, log.With("role", "traps"), registry)})
		}
	}

	// Every role's process may push its own metrics into a tenant, where alert rules watch them. It
	// starts last, so it stops first.
	if cfg.SelfMonitoring.URL != "" {
		workers = append(workers, service.Named{Name: "self-monitoring",
			Service: selfmon.New(cfg.SelfMonitoring, registry, registry, log.With("role", "self-monitoring"))})
	}

	var ingester *ingest.Service // the push routes, with the ingest role only
	if cfg.has("ingest") {
		ingester = samples
	}
	var console http.Handler // the web console, a client of the API served beside it
	if cfg.Console {
		console = web.New()
	}
	handler := api.NewHandler(api.Deps{
		Log:      log,
		Tenants:  db.NewTenantRunner(pool).WithStatementTimeout(cfg.DB.StatementTimeout),
		Auth:     authService,
		Ingest:   ingester,
		Checks:   runner,
		Guard:    guard,
		Secrets:  keys,
		Channels: notify.NewTester(system, sender),
		// With --smtp-url, invitations go to the invitee by email instead of into the answer.
		Invitations: sender,
		// A backtest is a tenant's request run as system work: bounded like the tenant's statements.
		Backtests: alerting.NewBacktester(system, cfg.DB.StatementTimeout),
		Operator:  tenant.NewOperator(system),
		BI:        biService,
		ServeAPI:  cfg.has("api"),
		Stream:    hub,
		Console:   console,
		Health:    db.NewHealth(pool),
		Registry:  registry,
		Config:    cfg.API,
		// /prometheus/api/v1 reads through the same tenant runner, with the same statement timeout.
		PromQL: promql.New(db.NewTenantRunner(pool).WithStatementTimeout(cfg.DB.StatementTimeout), cfg.PromQL,
			log.With("role", "api"), registry),

		StorageHealth: storageHealth, // GET /api/v1/operator/health
	})
	srv := api.NewHTTPServer(handler, cfg.API.HTTP)
	if hub != nil {
		srv.RegisterOnShutdown(hub.Close) // streams never go idle: end them as the shutdown begins
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// The workers run until they are stopped, not until ctx ends: the HTTP server shuts down first, and
	// the pushes and check runs it finishes still reach the writer.
	if err := workers.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		return err
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	names := make([]string, len(workers))
	for i, w := range workers {
		names[i] = w.Name
	}
	log.Info("infrawatch serving", "addr", ln.Addr().String(), "roles", strings.Join(cfg.Roles, ","),
		"workers", strings.Join(names, ","), "flavor", st.Flavor)
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
	stopped := make(chan struct{})
	go func() { workers.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		log.Warn("workers did not stop within the shutdown timeout")
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

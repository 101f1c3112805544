package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/agent"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// devState is what `infrawatch dev` remembers between runs, in <data-dir>/dev.json.
type devState struct {
	PostgresPort int    `json:"postgres_port"`
	DemoTenantID string `json:"demo_tenant_id"`
	DemoEmail    string `json:"demo_email"`
	DemoPassword string `json:"demo_password"` // a local demo account's password, kept so every run can print it
	AgentKey     string `json:"agent_key"`     // the demo tenant's ingest key for the built-in agent
	DemoChecks   bool   `json:"demo_checks"`   // the demo checks were created (once: deleting them sticks)
}

const devDatabase = "infrawatch"

func runDev(ctx context.Context, env *environment, args []string) error {
	cfg := defaultServeConfig()
	cfg.AllowPrivateTargets = true // checks of this machine are the point of the demo
	var roles string
	fs := newFlagSet(env, "dev", "dev [flags]\n\n"+
		"Runs everything on this machine: a PostgreSQL cluster of its own under --data-dir (created on the first\n"+
		"run, reused after), migrated (timescale flavor when TimescaleDB is installed), a demo tenant with an\n"+
		"admin user, and the server with every role. Ctrl-C stops all of it.")
	cfg.addFlags(fs, &roles)
	dataDir := fs.String("data-dir", "./.infrawatch", "directory for the local PostgreSQL cluster and dev state")
	pgPort := fs.Int("pg-port", 0, "port for the local PostgreSQL on 127.0.0.1 (0: the one used last time, or a free one)")
	withAgent := fs.Bool("with-agent", true, "also run infrawatch-agent for this machine, pushing to this server as the demo tenant")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Roles = parseRoles(roles)
	cfg.DB.URL = "postgres://placeholder" // set below, once the cluster is up
	secretKey := cfg.Secrets.Keys
	cfg.Secrets.Keys = "placeholder:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // the data directory's, below, unless given
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Secrets.Keys = secretKey
	log, err := newLogger(env.stderr, cfg.LogLevel, true)
	if err != nil {
		return err
	}

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// The key that seals secrets at rest: the one given, or the data directory's, made on the first run.
	if cfg.Secrets.Keys == "" {
		if cfg.Secrets.Keys, err = devSecretKey(filepath.Join(dir, "secret.key")); err != nil {
			return err
		}
	}
	statePath := filepath.Join(dir, "dev.json")
	state := readDevState(statePath)
	if *pgPort != 0 {
		state.PostgresPort = *pgPort
	}

	pgDir := filepath.Join(dir, "postgres")
	var cluster *pgcluster.Cluster
	if port := pgcluster.RunningPort(pgDir); port > 0 {
		log.Info("reusing the PostgreSQL server already running on the data directory", "port", port)
		state.PostgresPort = port
	} else {
		binDir, err := pgcluster.FindBinDir()
		if err != nil {
			return err
		}
		settings := map[string]string{}
		if pgcluster.TimescaleDBInstalled(binDir) {
			settings["shared_preload_libraries"] = "timescaledb"
			settings["timescaledb.telemetry_level"] = "off"
		}
		if state.PostgresPort != 0 {
			if port, ok := portIfFree(state.PostgresPort); ok {
				state.PostgresPort = port
			} else {
				state.PostgresPort = 0
			}
		}
		cluster, err = pgcluster.Start(ctx, pgcluster.Config{DataDir: pgDir, Port: state.PostgresPort, BinDir: binDir,
			Settings: settings, LogFile: filepath.Join(dir, "postgres.log")})
		if err != nil {
			return err
		}
		defer func() {
			log.Info("stopping PostgreSQL")
			_ = cluster.Stop()
		}()
		state.PostgresPort = cluster.Port
		// If PostgreSQL dies, stop serving rather than answer with errors.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case err := <-cluster.Exited():
				log.Error("PostgreSQL exited; stopping", "err", err)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	adminURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", state.PostgresPort)
	cfg.DB.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", state.PostgresPort, devDatabase)
	if cfg.BI.PublicDSN == "" { // BI tools on this machine reach the local cluster
		cfg.BI.PublicDSN = fmt.Sprintf("postgres://127.0.0.1:%d/%s?sslmode=disable", state.PostgresPort, devDatabase)
	}

	if err := db.NewAdmin(adminURL).EnsureDatabase(ctx, devDatabase); err != nil {
		return fmt.Errorf("the local PostgreSQL: %w", err)
	}
	flavor, err := db.NewMigrator(cfg.DB.URL).Up(ctx, "")
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()

	if state.DemoTenantID == "" {
		created, err := tenant.Create(ctx, db.NewSystem(pool), tenant.NewTenant{Name: "Demo", Slug: "demo", AdminEmail: "admin@demo.invalid"})
		if err != nil {
			return fmt.Errorf("seed the demo tenant: %w", err)
		}
		state.DemoTenantID, state.DemoEmail, state.DemoPassword = created.TenantID.String(), created.AdminEmail, created.AdminPassword
	}
	demoTenant, err := uuid.Parse(state.DemoTenantID)
	if err != nil {
		return fmt.Errorf("%s: demo_tenant_id: %w", statePath, err)
	}
	// The demo tenant's checks and key are made as the tenant, as its admin would through the API.
	asDemo := db.NewTenantRunner(pool)
	if *withAgent && state.AgentKey == "" {
		if state.AgentKey, err = createIngestKey(ctx, asDemo, demoTenant); err != nil {
			return fmt.Errorf("create the agent's ingest key: %w", err)
		}
	}
	if err := writeDevState(statePath, state); err != nil {
		return err
	}

	return serve(ctx, cfg, pool, log, func(addr string) {
		if !state.DemoChecks {
			if err := createDemoChecks(ctx, asDemo, demoTenant, addr, state.PostgresPort); err != nil {
				log.Warn("create the demo checks", "err", err)
			} else if state.DemoChecks = true; writeDevState(statePath, state) != nil {
				log.Warn("remember that the demo checks exist", "path", statePath)
			}
		}
		if *withAgent {
			go runDevAgent(ctx, addr, state.AgentKey, filepath.Join(dir, "agent-spool"), log)
		}
		fmt.Fprintf(env.stdout, "\ninfrawatch dev is running (%s flavor)\n"+
			"  console:      http://%[2]s/  (log in with the demo login)\n"+
			"  API:          http://%[2]s  (try /readyz and /metrics)\n"+
			"  database:     %s\n"+
			"  demo tenant:  %s\n"+
			"  demo login:   %s / %s\n"+
			"                (curl -s http://%[2]s/api/v1/auth/login -d '{\"email\":\"%[5]s\",\"password\":\"%[6]s\"}')\n"+
			"  data:         %s\n"+
			"Ctrl-C stops the server and PostgreSQL; the next run reuses the data.\n\n",
			flavor, addr, cfg.DB.URL, state.DemoTenantID, state.DemoEmail, state.DemoPassword, dir)
	})
}

// devSecretKey reads the dev key from path, making it (readable by its owner only) the first time.
func devSecretKey(path string) (string, error) {
	if raw, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(raw)), nil
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("read the secret key: %w", err)
	}
	spec, err := secrets.NewKeySpec("dev")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(spec+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the secret key: %w", err)
	}
	return spec, nil
}

func readDevState(path string) devState {
	var s devState
	if raw, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

func writeDevState(path string, s devState) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o600)
}

func portIfFree(port int) (int, bool) {
	free, err := pgcluster.PortFree(port)
	return port, err == nil && free
}

// createDemoChecks gives the demo tenant checks of this machine, whose first runs come within 30 s:
// its own health endpoint over HTTP, ICMP to 127.0.0.1 and TCP to the local PostgreSQL.
func createDemoChecks(ctx context.Context, tenants *db.TenantRunner, tenantID uuid.UUID, addr string, pgPort int) error {
	return tenants.WithTenant(ctx, tenantID, func(q *dbsqlc.Queries) error {
		for _, c := range []dbsqlc.CheckCreateParams{
			{Name: "infrawatch health", Kind: "http", Target: "http://" + addr + "/healthz", Settings: []byte(`{"body_contains": "ok"}`)},
			{Name: "ping localhost", Kind: "icmp", Target: "127.0.0.1", Settings: []byte(`{}`)},
			{Name: "local PostgreSQL port", Kind: "tcp", Target: fmt.Sprintf("127.0.0.1:%d", pgPort), Settings: []byte(`{}`)},
		} {
			c.IntervalSeconds, c.TimeoutSeconds, c.Enabled = 30, 5, true
			if _, err := q.CheckCreate(ctx, c); err != nil {
				return fmt.Errorf("check %q: %w", c.Name, err)
			}
		}
		return nil
	})
}

// createIngestKey makes an ingest-scoped API key for the demo tenant's built-in agent.
func createIngestKey(ctx context.Context, tenants *db.TenantRunner, tenantID uuid.UUID) (string, error) {
	key, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		return "", err
	}
	err = tenants.WithTenant(ctx, tenantID, func(q *dbsqlc.Queries) error {
		_, err := q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{Name: "infrawatch dev agent", Prefix: prefix, SecretHash: hash,
			Scopes: []string{"ingest"}})
		return err
	})
	return key, err
}

// runDevAgent runs infrawatch-agent for this machine against the dev server until ctx ends.
func runDevAgent(ctx context.Context, addr, key, spoolDir string, log *slog.Logger) {
	a, err := agent.New(agent.Config{Server: "http://" + addr, APIKey: key, Interval: 10 * time.Second,
		Collectors: agent.AllCollectors, SpoolDir: spoolDir, SpoolMaxBytes: 16 << 20, Labels: map[string]string{"env": "dev"}},
		agent.Options{Logger: log.With("component", "agent")})
	if err != nil {
		log.Error("built-in agent not started", "err", err)
		return
	}
	if err := a.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("built-in agent stopped", "err", err)
	}
}

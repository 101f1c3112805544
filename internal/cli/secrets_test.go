package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// serve without a key to seal secrets with refuses to start, saying what to set and how to make a key,
// before it touches the database.
func TestServeRequiresASecretKey(t *testing.T) {
	t.Setenv("INFRAWATCH_SECRET_KEY", "")
	code, _, stderr := run(t, "serve", "--database-url", "postgres://nobody@127.0.0.1:1/none")
	if code != 1 || !strings.Contains(stderr, "INFRAWATCH_SECRET_KEY") || !strings.Contains(stderr, "openssl rand -base64 32") {
		t.Fatalf("serve without a key: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "serve", "--database-url", "postgres://nobody@127.0.0.1:1/none", "--secret-key", "k1:dG9vIHNob3J0")
	if code != 1 || !strings.Contains(stderr, "--secret-key") || strings.Contains(stderr, "dG9vIHNob3J0") {
		t.Fatalf("serve with a short key: exit %d, %q (the key must not be quoted)", code, stderr)
	}
}

// The plaintexts of the secrets the test stores, none of which may be in a dump once serve started.
var plaintexts = []string{"community-plain-7f3a", "header-plain-9b1c", "body-plain-4d2e", "hook-plain-1a8f", "token-plain-6c0d"}

// Secrets stored before migration 000014 (in the checks' settings) are moved out of them by the
// migration and sealed by serve when it starts; secrets saved through the API are sealed from the
// start. After that, no secret is anywhere in a pg_dump of the database.
func TestNoPlaintextSecretInADumpAfterServeStarts(t *testing.T) {
	pgDump, err := pgcluster.FindBinDir()
	if err != nil {
		t.Skipf("no PostgreSQL binaries for pg_dump: %v", err)
	}
	pgDump = filepath.Join(pgDump, "pg_dump")
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	migrator := db.NewMigrator(d.URL)
	// A tenant (made by this binary, on the schema it knows), then back to the schema before 000014, where
	// secrets lived in the settings, and the tenant's checks then.
	created, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "Acme", AdminEmail: "owner@acme.example",
		AdminPassword: "owner-password-acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrator.Down(ctx, dbtest.MigrationsAbove(t, 13)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `
		INSERT INTO app.checks (tenant_id, name, kind, target, settings) VALUES
		  ($1, 'switch', 'snmp', '192.0.2.1:161', '{"version": "2c", "community": "community-plain-7f3a"}'),
		  ($1, 'shop', 'http', 'https://shop.example.com/', '{"headers": {"Authorization": "Bearer header-plain-9b1c"}, "body": "body-plain-4d2e"}')`,
		created.TenantID); err != nil {
		t.Fatal(err)
	}
	if _, err := migrator.Up(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var staged int
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.checks WHERE secrets_staging IS NOT NULL`).Scan(&staged); err != nil || staged != 2 {
		t.Fatalf("after the migration %d checks hold staged secrets (%v), want 2", staged, err)
	}

	// serve seals them before it serves, and the API seals a new channel's secrets.
	base := startServe(t, d, "api")
	token := login(t, base, "owner@acme.example", "owner-password-acme")
	for _, ch := range []map[string]any{
		{"name": "hook", "kind": "webhook", "settings": map[string]any{"url": "https://192.0.2.10/hook-plain-1a8f", "secret": "0123456789abcdef"}},
		{"name": "tg", "kind": "telegram", "settings": map[string]any{"bot_token": "123456:token-plain-6c0dABCDEFGHIJKLMNOP", "chat_id": "42"}},
	} {
		if status := post(t, base+"/api/v1/channels", token, ch); status != http.StatusCreated {
			t.Fatalf("create channel %v: %d", ch["name"], status)
		}
	}

	dump, err := exec.Command(pgDump, "--dbname", d.URL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(dump, []byte("COPY app.checks")) || !bytes.Contains(dump, []byte("COPY app.channels")) {
		t.Fatal("the dump lacks the checks or the channels")
	}
	for _, p := range plaintexts {
		if bytes.Contains(dump, []byte(p)) {
			t.Errorf("the dump holds %q in the clear", p)
		}
	}
	// The checks' secrets still open: sealed, not lost.
	keys, _ := secrets.Parse(dbtest.SecretKey)
	var blob []byte
	var tenantID uuid.UUID
	if err := d.Pool.QueryRow(ctx, `SELECT secrets, tenant_id FROM app.checks WHERE name = 'switch'`).Scan(&blob, &tenantID); err != nil {
		t.Fatal(err)
	}
	plain, err := keys.Open(blob, secrets.For(secrets.ChecksColumn, tenantID))
	if err != nil || !strings.Contains(string(plain), "community-plain-7f3a") {
		t.Fatalf("the sealed community opens to %q (%v)", plain, err)
	}
}

// secrets rotate seals every secret with the first key; the old key can then go.
func TestSecretsRotate(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	created, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "Acme", AdminEmail: "owner@acme.example",
		AdminPassword: "owner-password-acme"})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := secrets.Parse(dbtest.SecretKey)
	chBlob, _ := old.Seal([]byte(`{"url":"https://example.com/x"}`), secrets.For(secrets.ChannelsColumn, created.TenantID))
	ckBlob, _ := old.Seal([]byte(`{"community":"c"}`), secrets.For(secrets.ChecksColumn, created.TenantID))
	if _, err := d.Pool.Exec(ctx, `INSERT INTO app.channels (tenant_id, name, kind, settings, secrets)
	                               VALUES ($1, 'hook', 'webhook', '{"url":"********"}', $2)`, created.TenantID, chBlob); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, settings, secrets)
	                               VALUES ($1, 's', 'snmp', 'h:161', '{"community":"********"}', $2)`, created.TenantID, ckBlob); err != nil {
		t.Fatal(err)
	}
	tcBlob, _ := old.Seal([]byte(`{"auth_password":"auth-pass-1"}`), secrets.For(secrets.TrapCredentialsColumn, created.TenantID))
	if _, err := d.Pool.Exec(ctx, `INSERT INTO app.trap_credentials (tenant_id, name, kind, username, security_level, auth_protocol, secrets)
	                               VALUES ($1, 'v3', 'usm', 'ops', 'authNoPriv', 'SHA', $2)`, created.TenantID, tcBlob); err != nil {
		t.Fatal(err)
	}
	newKey, _ := secrets.NewKeySpec("next")
	code, stdout, stderr := run(t, "secrets", "rotate", "--database-url", d.URL, "--secret-key", newKey+","+dbtest.SecretKey)
	if code != 0 || !strings.Contains(stdout, "sealed with key next: 1 channels, 1 checks, 1 trap credentials") {
		t.Fatalf("rotate: %d %q %q", code, stdout, stderr)
	}
	onlyNew, _ := secrets.Parse(newKey)
	for _, q := range []struct{ sql, column string }{
		{`SELECT secrets FROM app.channels`, secrets.ChannelsColumn}, {`SELECT secrets FROM app.checks`, secrets.ChecksColumn},
		{`SELECT secrets FROM app.trap_credentials`, secrets.TrapCredentialsColumn},
	} {
		var blob []byte
		if err := d.Pool.QueryRow(ctx, q.sql).Scan(&blob); err != nil {
			t.Fatal(err)
		}
		if id, _ := secrets.KeyID(blob); id != "next" {
			t.Errorf("%s: sealed with %q after rotate", q.column, id)
		}
		if _, err := onlyNew.Open(blob, secrets.For(q.column, created.TenantID)); err != nil {
			t.Errorf("%s does not open with the new key alone: %v", q.column, err)
		}
	}
	// Again: nothing left to do. Without the old key, an old blob says which key it needs.
	if _, stdout, _ := run(t, "secrets", "rotate", "--database-url", d.URL, "--secret-key", newKey); !strings.Contains(stdout, "0 channels, 0 checks, 0 trap credentials") {
		t.Errorf("second rotate: %q", stdout)
	}
	if _, err := d.Pool.Exec(ctx, `UPDATE app.channels SET secrets = $1`, chBlob); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "secrets", "rotate", "--database-url", d.URL, "--secret-key", newKey); code != 1 ||
		!strings.Contains(stderr, `key "test"`) {
		t.Errorf("rotate without the old key: %d %q", code, stderr)
	}
	if code, stdout, _ := run(t, "secrets", "new-key", "--id", "k9"); code != 0 || !strings.HasPrefix(stdout, "k9:") {
		t.Errorf("new-key: %d %q", code, stdout)
	}
}

// startServe runs serve in this process with the given roles until the test ends, and returns its URL.
func startServe(t *testing.T, d *dbtest.DB, roles string) string {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.Listen, cfg.Roles, cfg.DB.URL, cfg.Secrets.Keys = "127.0.0.1:0", parseRoles(roles), d.URL, dbtest.SecretKey
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, d.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-done:
		t.Fatalf("serve returned before serving: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("serve did not listen within a minute")
	}
	return ""
}

func login(t *testing.T, base, email, password string) string {
	t.Helper()
	raw, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pair); err != nil || pair.AccessToken == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return pair.AccessToken
}

func post(t *testing.T, target, token string, body any) int {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", target, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if _, err := url.Parse(target); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

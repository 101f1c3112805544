package bi_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// verifies says whether a stored SCRAM-SHA-256 verifier is the one of password: the same salt and
// iterations give the same keys.
func verifies(t *testing.T, stored, password string) bool {
	t.Helper()
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	head, _, ok := strings.Cut(strings.TrimPrefix(stored, "SCRAM-SHA-256$"), "$")
	iter, salt64, ok2 := strings.Cut(head, ":")
	if !ok || !ok2 || !strings.HasPrefix(stored, "SCRAM-SHA-256$") {
		t.Fatalf("not a SCRAM-SHA-256 verifier: %q", stored)
	}
	iterations, err := strconv.Atoi(iter)
	if err != nil {
		t.Fatal(err)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := bi.ScramVerifier(password, salt, iterations)
	if err != nil {
		t.Fatal(err)
	}
	return mine == stored
}

func storedVerifier(t *testing.T, d *dbtest.DB, login string) string {
	t.Helper()
	var v string
	if err := d.Pool.QueryRow(context.Background(), `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, login).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The verifier this package computes is the one PostgreSQL computes for the same password, salt and
// iterations: the server's own CREATE ROLE … PASSWORD is the reference (in a transaction rolled back).
func TestScramVerifierIsPostgreSQLs(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	const password = "correct horse battery staple"
	var stored string
	if err := tx.QueryRow(ctx, `SELECT set_config('password_encryption', 'scram-sha-256', true)`).Scan(new(string)); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `CREATE ROLE bi_scram_reference PASSWORD '`+password+`'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = 'bi_scram_reference'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !verifies(t, stored, password) {
		t.Errorf("PostgreSQL stored %s; this package computes another verifier for the same salt", stored)
	}
	if verifies(t, stored, password+"!") {
		t.Error("a different password verifies too")
	}
}

// Create makes a login that is what the migration promises: random name, the password (as its
// verifier), member of infrawatch_bi only, the tenant's limits, mapped to the tenant, audited. Rotate
// changes the password and ends its sessions; Revoke drops it and ends its sessions.
func TestCredentialLifecycle(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		w := newWorld(t, flavor)
		issued := w.issue(t, w.alpha)

		if !regexpLogin(issued.Login) || strings.Contains(issued.Login, "alpha") {
			t.Errorf("login %q: want bi_ and 16 random characters, nothing of the tenant", issued.Login)
		}
		if len(issued.Password) < 26 {
			t.Errorf("password of %d characters, want at least 26", len(issued.Password))
		}
		ep, _ := w.svc.Endpoint()
		if issued.Endpoint != ep || issued.Endpoint.SSLMode != "disable" {
			t.Errorf("endpoint %+v, want %+v", issued.Endpoint, ep)
		}
		want := bi.Limits{StatementTimeout: 30 * time.Second, IdleInTransactionTimeout: time.Minute, ConnectionLimit: 5}
		if issued.Limits != want {
			t.Errorf("limits %+v, want the defaults %+v", issued.Limits, want)
		}
		if !verifies(t, storedVerifier(t, w.d, issued.Login), issued.Password) {
			t.Error("the stored verifier is not the password's")
		}

		var super, createRole, createDB, bypass, canLogin bool
		var connLimit int
		if err := w.d.Pool.QueryRow(ctx, `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin, rolconnlimit
		                                    FROM pg_roles WHERE rolname = $1`, issued.Login).
			Scan(&super, &createRole, &createDB, &bypass, &canLogin, &connLimit); err != nil {
			t.Fatal(err)
		}
		if super || createRole || createDB || bypass || !canLogin || connLimit != 5 {
			t.Errorf("role attributes super=%v createrole=%v createdb=%v bypassrls=%v login=%v connlimit=%d",
				super, createRole, createDB, bypass, canLogin, connLimit)
		}
		memberOf, err := rows(ctx, w.d.Pool, `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
		                                        WHERE m.member = $1::regrole`, issued.Login)
		if err != nil || !slices.Equal(memberOf, []string{"infrawatch_bi"}) {
			t.Errorf("member of %v (%v), want infrawatch_bi only", memberOf, err)
		}
		conn := connect(t, issued)
		settings, err := rows(ctx, conn, `SELECT current_setting('default_transaction_read_only'), current_setting('statement_timeout'),
		                                         current_setting('idle_in_transaction_session_timeout'), current_setting('search_path'),
		                                         session_user::text`)
		if err != nil || len(settings) != 1 || settings[0] != "on 30s 1min bi "+issued.Login {
			t.Errorf("session settings %v (%v), want read-only, 30s, 1min, search_path bi, as the login", settings, err)
		}

		// Listed for its tenant only, through the API role's row-level security.
		list := func(tenantID uuid.UUID) []dbsqlc.BiCredentialListRow {
			var got []dbsqlc.BiCredentialListRow
			if err := db.NewTenantRunner(w.d.Pool).WithTenant(ctx, tenantID, func(q *dbsqlc.Queries) (err error) {
				got, err = q.BiCredentialList(ctx, dbsqlc.BiCredentialListParams{MaxRows: 100})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := list(w.alpha.id); len(got) != 1 || got[0].Login != issued.Login || got[0].ConnectionLimit != 5 {
			t.Errorf("alpha's list = %+v", got)
		}
		if got := list(w.bravo.id); len(got) != 0 {
			t.Errorf("bravo's list shows %+v", got)
		}

		// Rotation: another password, the old one's session ended, limits applied again.
		if _, err := w.d.Pool.Exec(ctx, `UPDATE app.bi_settings SET connection_limit = 3 WHERE tenant_id = $1`, w.alpha.id); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Rotate(ctx, w.bravo.id, issued.ID, actor); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("bravo rotating alpha's credential: %v, want not found", err)
		}
		rotated, err := w.svc.Rotate(ctx, w.alpha.id, issued.ID, actor)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.Password == issued.Password || rotated.Login != issued.Login || rotated.RotatedAt == nil || rotated.Limits.ConnectionLimit != 3 {
			t.Errorf("rotated = %+v", rotated.Credential)
		}
		stored := storedVerifier(t, w.d, issued.Login)
		if !verifies(t, stored, rotated.Password) || verifies(t, stored, issued.Password) {
			t.Error("after rotation the stored verifier is not the new password's alone")
		}
		if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
			t.Error("the session of the old password survived the rotation")
		}
		if err := w.d.Pool.QueryRow(ctx, `SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, issued.Login).Scan(&connLimit); err != nil || connLimit != 3 {
			t.Errorf("connection limit after rotation = %d (%v), want the tenant's new 3", connLimit, err)
		}

		// Revocation: another tenant cannot, the tenant can; the login and its sessions go.
		conn = connect(t, rotated)
		if err := w.svc.Revoke(ctx, w.bravo.id, issued.ID, actor); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("bravo revoking alpha's credential: %v, want not found", err)
		}
		if err := w.svc.Revoke(ctx, w.alpha.id, issued.ID, actor); err != nil {
			t.Fatal(err)
		}
		if roleExists(t, w.d, issued.Login) {
			t.Error("the role outlived its revocation")
		}
		if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
			t.Error("a live session outlived the revocation")
		}
		if _, err := dial(rotated); err == nil {
			t.Error("logged in after the revocation")
		}
		if err := w.svc.Revoke(ctx, w.alpha.id, issued.ID, actor); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("revoking twice: %v, want not found", err)
		}

		actions, err := rows(ctx, w.d.Pool, `SELECT action || ' ' || object_id || ' ' || (details->>'login') FROM app.audit_log
		                                      WHERE tenant_id = $1 AND object_kind = 'bi_credential' ORDER BY id`, w.alpha.id)
		id := strconv.FormatInt(issued.ID, 10)
		wantActions := []string{"bi_credential.create " + id + " " + issued.Login, "bi_credential.rotate " + id + " " + issued.Login,
			"bi_credential.revoke " + id + " " + issued.Login}
		if err != nil || !slices.Equal(actions, wantActions) {
			t.Errorf("audit log %v (%v), want %v", actions, err, wantActions)
		}
	})
}

func regexpLogin(login string) bool {
	if len(login) != 19 || !strings.HasPrefix(login, "bi_") {
		return false
	}
	for _, c := range login[3:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func TestCreateRefusesWhatItCannotIssue(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	var invalid *bi.InvalidError
	for _, name := range []string{"", "   ", strings.Repeat("é", bi.MaxNameLength+1)} {
		if _, err := w.svc.Create(ctx, w.alpha.id, name, actor); !errors.As(err, &invalid) || invalid.Field != "name" {
			t.Errorf("name %q: %v, want an InvalidError on name", name, err)
		}
	}
	if _, err := w.svc.Create(ctx, w.alpha.id, strings.Repeat("é", bi.MaxNameLength), actor); err != nil {
		t.Errorf("a name of %d characters: %v", bi.MaxNameLength, err)
	}
	if _, err := w.svc.Create(ctx, uuid.New(), "x", actor); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("an unknown tenant: %v, want not found", err)
	}
	off, err := bi.NewService(bi.Config{}, w.d.System())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Create(ctx, w.alpha.id, "x", actor); !errors.Is(err, bi.ErrNotConfigured) {
		t.Errorf("without a public address: %v, want ErrNotConfigured", err)
	}
	if _, err := off.Rotate(ctx, w.alpha.id, 1, actor); !errors.Is(err, bi.ErrNotConfigured) {
		t.Errorf("rotating without a public address: %v, want ErrNotConfigured", err)
	}
}

// The tenant's maximum holds when logins are made at once: the tenant's limits row is locked while
// one is counted and made.
func TestCreateKeepsToTheMaximumUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	if _, err := w.d.Pool.Exec(ctx, `INSERT INTO app.bi_settings (tenant_id, max_credentials) VALUES ($1, 2)`, w.alpha.id); err != nil {
		t.Fatal(err)
	}
	var made, refused int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			_, err := w.svc.Create(ctx, w.alpha.id, "concurrent "+strconv.Itoa(i), actor)
			mu.Lock()
			defer mu.Unlock()
			var tooMany *bi.TooManyError
			switch {
			case err == nil:
				made++
			case errors.As(err, &tooMany) && tooMany.Max == 2:
				refused++
			default:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	if made != 2 || refused != 3 {
		t.Errorf("made %d, refused %d; want 2 and 3", made, refused)
	}
}

// Deleting a tenant drops its BI logins with it: the mapping goes by cascade, and the login with it.
func TestTenantDeletionDropsItsLogins(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	a, b := w.issue(t, w.alpha), w.issue(t, w.bravo)
	conn := connect(t, a)
	if err := tenant.Delete(ctx, w.d.System(), w.alpha.id); err != nil {
		t.Fatal(err)
	}
	if roleExists(t, w.d, a.Login) {
		t.Error("the deleted tenant's login survived it")
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the deleted tenant's session survived it")
	}
	if !roleExists(t, w.d, b.Login) {
		t.Error("the other tenant's login went too")
	}
}

// A database copied from a template, or whose TEMPORARY an operator gave back to PUBLIC: creating a
// login takes it away again before the login exists.
func TestCreateDeniesTemporaryAgain(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	if _, err := w.d.Pool.Exec(ctx, `GRANT TEMPORARY ON DATABASE `+w.d.Name+` TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	issued := w.issue(t, w.alpha)
	var temp bool
	if err := w.d.Pool.QueryRow(ctx, `SELECT has_database_privilege($1, current_database(), 'TEMPORARY')`, issued.Login).Scan(&temp); err != nil || temp {
		t.Errorf("the new login may create temporary tables: %v (%v)", temp, err)
	}
}

// migrate down drops the logins the database made: they are roles of the whole server.
func TestMigrateDownDropsTheLogins(t *testing.T) {
	ctx := context.Background()
	_, url := dbtest.NewEmpty(t)
	m := db.NewMigrator(url)
	if _, err := m.Up(ctx, db.FlavorPostgres); err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(ctx, db.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	d := &dbtest.DB{URL: url, Pool: pool, Flavor: db.FlavorPostgres}
	svc, err := bi.NewService(bi.Config{PublicDSN: publicDSN(t, d)}, d.System())
	if err != nil {
		t.Fatal(err)
	}
	created, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "Down", AdminEmail: "down@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := svc.Create(ctx, created.TenantID, "grafana", actor)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, issued)
	const biMigration = 13 // migrations/000013_bi: revert it and every later one
	if err := m.Down(ctx, db.MigrationsAfter(biMigration-1)); err != nil {
		t.Fatal(err)
	}
	if roleExists(t, d, issued.Login) {
		t.Errorf("migrate down left the login %s on the server", issued.Login)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the login's session survived migrate down")
	}
	var temp bool
	if err := pool.QueryRow(ctx, `SELECT has_database_privilege('public', current_database(), 'TEMPORARY')`).Scan(&temp); err != nil || !temp {
		t.Errorf("after migrate down PUBLIC has TEMPORARY = %v (%v), want PostgreSQL's default back", temp, err)
	}
	if _, err := m.Up(ctx, ""); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

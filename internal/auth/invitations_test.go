package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// Migration 000008 turns the invitations of password-less accounts into invitations of the new shape
// whose tokens keep working, removes those accounts, and revokes invitations that could overwrite a
// password; its down migration brings the old shape back.
func TestMigration8ConvertsPendingInvitations(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	d.Pool.Close() // the schema changes under it; each step below opens what it needs
	migrator := db.NewMigrator(d.URL)
	toVersion7 := db.MigrationsAfter(7) // steps: versions may leave gaps
	if err := migrator.Down(ctx, toVersion7); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	hash, err := auth.HashPassword("members-own-password")
	if err != nil {
		t.Fatal(err)
	}
	pendingToken, pendingHash, _ := auth.NewInviteToken()
	staleToken, staleHash, _ := auth.NewInviteToken()
	exec(`INSERT INTO app.tenants (slug, name) VALUES ('mig', 'Mig')`)
	exec(`INSERT INTO app.users (email, password_hash) VALUES ('pending@x.example', NULL), ('member@x.example', $1)`, hash)
	exec(`INSERT INTO app.memberships (tenant_id, user_id, role)
	      SELECT t.id, u.id, CASE u.email WHEN 'pending@x.example' THEN 'editor' ELSE 'admin' END
	        FROM app.tenants t, app.users u WHERE t.slug = 'mig'`)
	// The invitation of the password-less account, and one of an account that has since set its password
	// through another invitation (the token that could overwrite it).
	exec(`INSERT INTO app.invitations (tenant_id, user_id, token_hash, expires_at)
	      SELECT t.id, u.id, CASE u.email WHEN 'pending@x.example' THEN $1::bytea ELSE $2::bytea END, now() + interval '1 day'
	        FROM app.tenants t, app.users u WHERE t.slug = 'mig'`, pendingHash, staleHash)

	if _, err := migrator.Up(ctx, ""); err != nil {
		t.Fatalf("up: %v", err)
	}
	if n := count(`SELECT count(*) FROM app.users WHERE email = 'pending@x.example'`); n != 0 {
		t.Errorf("the never-activated account is still there (%d)", n)
	}
	if n := count(`SELECT count(*) FROM app.invitations WHERE email = 'pending@x.example' AND role = 'editor'
	                  AND accepted_at IS NULL AND revoked_at IS NULL`); n != 1 {
		t.Errorf("%d pending invitations of pending@x.example as editor, want 1", n)
	}
	if n := count(`SELECT count(*) FROM app.invitations WHERE email = 'member@x.example' AND revoked_at IS NOT NULL`); n != 1 {
		t.Errorf("%d revoked invitations of the account with a password, want 1", n)
	}
	if n := count(`SELECT count(*) FROM app.memberships`); n != 1 {
		t.Errorf("%d memberships, want only member@x.example's", n)
	}

	// Down brings back the password-less account with its membership and invitation.
	if err := migrator.Down(ctx, toVersion7); err != nil {
		t.Fatalf("down: %v", err)
	}
	if n := count(`SELECT count(*) FROM app.invitations i JOIN app.users u ON u.id = i.user_id
	                 JOIN app.memberships m ON m.user_id = u.id AND m.tenant_id = i.tenant_id
	                WHERE u.email = 'pending@x.example' AND u.password_hash IS NULL AND m.role = 'editor'`); n != 1 {
		t.Errorf("after down: %d invitations of a password-less pending@x.example with its membership, want 1", n)
	}
	if n := count(`SELECT count(*) FROM app.invitations i JOIN app.users u ON u.id = i.user_id WHERE u.email = 'member@x.example'`); n != 0 {
		t.Errorf("after down: the revoked invitation of the account with a password is back (%d)", n)
	}
	if _, err := migrator.Up(ctx, ""); err != nil {
		t.Fatalf("up again: %v", err)
	}

	pool, err := db.Open(ctx, db.Config{URL: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, db.NewSystem(pool))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(db.NewSystem(pool), tokens)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AcceptInvite(ctx, auth.Acceptance{Token: staleToken, Password: "chosen-by-someone"}); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("the stale invitation of an account with a password: %v, want ErrUnauthenticated", err)
	}
	accepted, err := svc.AcceptInvite(ctx, auth.Acceptance{Token: pendingToken, Password: "a-password-of-my-own"})
	if err != nil || accepted.Role != "editor" || accepted.Email != "pending@x.example" {
		t.Fatalf("accepting the converted invitation: %+v, %v", accepted, err)
	}
	if _, err := svc.Login(ctx, "pending@x.example", "a-password-of-my-own", &accepted.TenantID); err != nil {
		t.Errorf("login after accepting: %v", err)
	}
	if _, err := svc.Login(ctx, "member@x.example", "members-own-password", nil); err != nil {
		t.Errorf("the member's password no longer works: %v", err)
	}
}

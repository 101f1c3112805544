package api_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// The scenarios of the security review's item 1: a tenant admin must never be able to set, learn or
// take over the credentials of an account that belongs to other tenants.

// invite adds email to a tenant as its admin, and returns the answer (with the one-time invite_token).
func (w *world) invite(t *testing.T, credential, email, role string) response {
	t.Helper()
	return w.call(t, "POST", "/api/v1/users", credential, map[string]any{"email": email, "role": role}).must(t, http.StatusCreated)
}

func (w *world) accept(t *testing.T, token, password string) response {
	t.Helper()
	return w.call(t, "POST", "/api/v1/auth/accept-invite", "", map[string]any{"token": token, "password": password})
}

func (w *world) login(t *testing.T, email, password string, tenant any) response {
	t.Helper()
	body := map[string]any{"email": email, "password": password}
	if tenant != nil {
		body["tenant_id"] = tenant
	}
	return w.call(t, "POST", "/api/v1/auth/login", "", body)
}

// emails lists the emails of a tenant's members as its owner sees them.
func (w *world) memberEmails(t *testing.T, tw *tenantWorld) []string {
	t.Helper()
	got := w.call(t, "GET", "/api/v1/users?limit=500", tw.tokens["owner"], nil).must(t, http.StatusOK)
	var out []string
	for _, it := range got.json["items"].([]any) {
		out = append(out, it.(map[string]any)["email"].(string))
	}
	return out
}

// A's owner invites victim@x (pending); B's admin invites the same email and accepts its own
// invitation. Whatever that does, it must not lead into A.
func TestInvitationRaceGivesNoWayIntoAnotherTenant(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		const victim = "victim@x.example"
		fromA := w.invite(t, w.a.tokens["owner"], victim, "admin")
		fromB := w.invite(t, w.b.tokens["admin"], victim, "viewer")

		w.accept(t, fromB.str("invite_token"), "chosen-by-bravo")
		if got := w.login(t, victim, "chosen-by-bravo", w.a.id); got.status != http.StatusUnauthorized {
			t.Fatalf("B's admin logs into A as the invited victim: %d %s", got.status, got.raw)
		}
		if slices.Contains(w.memberEmails(t, w.a), victim) {
			t.Fatalf("the victim is a member of A before accepting A's invitation")
		}
		// The account B's admin made exists only in B. The victim cannot accept A's invitation with
		// another password: a pending invitation never touches an account that has a password (the
		// squatting this allows is the residual risk the README's security model states).
		if got := w.accept(t, fromA.str("invite_token"), "the-victims-own-password"); got.status != http.StatusUnauthorized {
			t.Fatalf("accepting A's invitation with another password than the account's: %d %s", got.status, got.raw)
		}
		if got := w.login(t, victim, "chosen-by-bravo", nil).must(t, http.StatusOK); got.str("access_token") == "" {
			t.Fatalf("login: %s", got.raw)
		}
		if slices.Contains(w.memberEmails(t, w.a), victim) || !slices.Contains(w.memberEmails(t, w.b), victim) {
			t.Fatalf("memberships: A %v, B %v; want the account in B only", w.memberEmails(t, w.a), w.memberEmails(t, w.b))
		}
	})
}

// B's invitation, still pending after the victim accepted A's, must not overwrite the victim's password.
func TestPendingInvitationCannotOverwriteAPassword(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		const victim = "victim@x.example"
		fromA := w.invite(t, w.a.tokens["owner"], victim, "admin")
		fromB := w.invite(t, w.b.tokens["admin"], victim, "viewer")
		if got := w.accept(t, fromA.str("invite_token"), "the-victims-own-password"); got.status >= 300 {
			t.Fatalf("the victim accepts A's invitation: %d %s", got.status, got.raw)
		}
		if got := w.accept(t, fromB.str("invite_token"), "chosen-by-bravo"); got.status != http.StatusUnauthorized {
			t.Fatalf("B's invitation after the victim set a password: %d %s, want 401", got.status, got.raw)
		}
		w.login(t, victim, "chosen-by-bravo", w.a.id).must(t, http.StatusUnauthorized)
		w.login(t, victim, "the-victims-own-password", w.a.id).must(t, http.StatusOK)
		if slices.Contains(w.memberEmails(t, w.b), victim) {
			t.Fatal("the victim became a member of B without accepting")
		}
		// The victim may still join B by proving they own the account.
		joined := w.accept(t, fromB.str("invite_token"), "the-victims-own-password").must(t, http.StatusOK)
		if joined.str("tenant_id") != w.b.id.String() {
			t.Fatalf("joined %s", joined.raw)
		}
		w.login(t, victim, "the-victims-own-password", w.b.id).must(t, http.StatusOK)
	})
}

// A tenant admin cannot make an account with a password of its choosing, so it cannot be inside the
// account when another tenant adds that email later.
func TestAdminCannotSetAPassword(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		const newhire = "newhire@x.example"
		got := w.call(t, "POST", "/api/v1/users", w.b.tokens["admin"], map[string]any{"email": newhire, "role": "viewer",
			"password": "chosen-by-bravo"})
		if got.status != http.StatusBadRequest || !strings.Contains(got.raw, `"field":"password"`) {
			t.Fatalf("B's admin creating an account with a password: %d %s, want 400 naming password", got.status, got.raw)
		}
		var accounts int
		if err := w.d.Pool.QueryRow(context.Background(), "SELECT count(*) FROM app.users WHERE lower(email) = $1", newhire).
			Scan(&accounts); err != nil || accounts != 0 {
			t.Fatalf("%d accounts for %s (%v), want none", accounts, newhire, err)
		}
		w.invite(t, w.a.tokens["admin"], newhire, "editor")
		w.login(t, newhire, "chosen-by-bravo", w.a.id).must(t, http.StatusUnauthorized)
		// Even an invitation of B's own, accepted by B's admin, opens nothing in A.
		fromB := w.invite(t, w.b.tokens["admin"], newhire, "viewer")
		w.accept(t, fromB.str("invite_token"), "chosen-by-bravo").must(t, http.StatusOK)
		w.login(t, newhire, "chosen-by-bravo", w.a.id).must(t, http.StatusUnauthorized)
		if slices.Contains(w.memberEmails(t, w.a), newhire) {
			t.Fatal("newhire is a member of A without accepting A's invitation")
		}
	})
}

// Inviting answers the same whether the email has an account elsewhere or not, and never shows
// anything of another tenant's account.
func TestInvitationRevealsNothingAboutOtherTenants(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		ctx := context.Background()
		if _, err := w.d.Pool.Exec(ctx, "UPDATE app.users SET name = 'Alice Hiddenname' WHERE email = $1", w.a.emails["owner"]); err != nil {
			t.Fatal(err)
		}
		existing := w.invite(t, w.b.tokens["admin"], w.a.emails["owner"], "viewer")
		fresh := w.invite(t, w.b.tokens["admin"], "nobody-yet@x.example", "viewer")
		if k1, k2 := slices.Sorted(maps.Keys(existing.json)), slices.Sorted(maps.Keys(fresh.json)); !slices.Equal(k1, k2) {
			t.Fatalf("the answers differ in shape: %v vs %v", k1, k2)
		}
		for _, r := range []response{existing, fresh} {
			if r.str("status") != "pending" || r.json["invited"] != nil || !strings.HasPrefix(r.str("invite_token"), "iwi_") {
				t.Errorf("answer %s, want a pending invitation with a token", r.raw)
			}
		}
		if strings.Contains(existing.raw, "Hiddenname") {
			t.Errorf("the answer shows the name of another tenant's account: %s", existing.raw)
		}
		users := w.call(t, "GET", "/api/v1/users", w.b.tokens["admin"], nil).must(t, http.StatusOK)
		if strings.Contains(users.raw, w.a.emails["owner"]) || strings.Contains(users.raw, "Hiddenname") {
			t.Errorf("B's members show A's owner before they accepted: %s", users.raw)
		}
		// Inviting an email that is already a member of this tenant is a conflict: that reveals nothing
		// outside the tenant.
		w.call(t, "POST", "/api/v1/users", w.b.tokens["admin"], map[string]any{"email": w.b.emails["viewer"], "role": "editor"}).
			must(t, http.StatusConflict)
	})
}

// Invitation tokens are single-use, bound to their tenant, replaced by a re-invitation and dead once
// revoked; every membership change is in the tenant's audit log.
func TestInvitationTokensLifecycle(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		admin := w.a.tokens["admin"]

		// A re-invitation revokes the previous token.
		first := w.invite(t, admin, "late@alpha.example", "viewer")
		second := w.invite(t, admin, "late@alpha.example", "editor")
		w.accept(t, first.str("invite_token"), "my-own-password-1").must(t, http.StatusUnauthorized)

		// Pending invitations are listed for admins, and revoking one kills its token.
		list := w.call(t, "GET", "/api/v1/invitations", admin, nil).must(t, http.StatusOK)
		if !strings.Contains(list.raw, `"late@alpha.example"`) || strings.Contains(list.raw, "iwi_") {
			t.Fatalf("invitations list: %s", list.raw)
		}
		w.call(t, "GET", "/api/v1/invitations", w.a.tokens["editor"], nil).must(t, http.StatusForbidden)
		w.call(t, "DELETE", "/api/v1/invitations/"+second.id(t), admin, nil).must(t, http.StatusNoContent)
		w.accept(t, second.str("invite_token"), "my-own-password-1").must(t, http.StatusUnauthorized)

		// Single use.
		inv := w.invite(t, admin, "new@alpha.example", "viewer")
		joined := w.accept(t, inv.str("invite_token"), "my-own-password-1").must(t, http.StatusOK)
		if joined.str("tenant_id") != w.a.id.String() || joined.str("role") != "viewer" {
			t.Fatalf("accepted: %s", joined.raw)
		}
		w.accept(t, inv.str("invite_token"), "my-own-password-1").must(t, http.StatusUnauthorized)
		w.call(t, "DELETE", "/api/v1/invitations/"+inv.id(t), admin, nil).must(t, http.StatusNotFound) // spent

		// B's token joins B, never A; A cannot revoke B's invitation.
		fromB := w.invite(t, w.b.tokens["admin"], "cross@x.example", "viewer")
		w.call(t, "DELETE", "/api/v1/invitations/"+fromB.id(t), w.a.tokens["owner"], nil).must(t, http.StatusNotFound)
		if got := w.accept(t, fromB.str("invite_token"), "my-own-password-2").must(t, http.StatusOK); got.str("tenant_id") != w.b.id.String() {
			t.Fatalf("B's token joined %s", got.raw)
		}
		w.login(t, "cross@x.example", "my-own-password-2", w.a.id).must(t, http.StatusUnauthorized)

		// Every membership change is audited in the tenant.
		newID := joined.str("user_id")
		w.call(t, "PATCH", "/api/v1/users/"+newID, admin, map[string]any{"role": "editor"}).must(t, http.StatusOK)
		w.call(t, "PATCH", "/api/v1/users/"+newID, admin, map[string]any{"disabled": true}).must(t, http.StatusOK)
		w.call(t, "DELETE", "/api/v1/users/"+newID, admin, nil).must(t, http.StatusNoContent)
		audit := w.call(t, "GET", "/api/v1/audit?limit=500", w.a.tokens["owner"], nil).must(t, http.StatusOK)
		var actions []string
		for _, e := range audit.json["items"].([]any) {
			actions = append(actions, e.(map[string]any)["action"].(string))
		}
		for _, want := range []string{"invitation.create", "invitation.revoke", "invitation.accept", "user.update", "user.remove"} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit log lacks %s: %v", want, actions)
			}
		}
		if strings.Contains(audit.raw, "cross@x.example") {
			t.Errorf("A's audit log shows B's invitation: %s", audit.raw)
		}
	})
}

// A person who already has an account joins another tenant while logged in, without sending a
// password; the invitation must be for their email.
func TestLoggedInUserAcceptsAnInvitation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		inv := w.invite(t, w.b.tokens["admin"], w.a.emails["viewer"], "editor")
		body := map[string]any{"token": inv.str("invite_token")}
		w.call(t, "POST", "/api/v1/auth/accept-invite", w.a.tokens["editor"], body).must(t, http.StatusUnauthorized)
		joined := w.call(t, "POST", "/api/v1/auth/accept-invite", w.a.tokens["viewer"], body).must(t, http.StatusOK)
		if joined.str("tenant_id") != w.b.id.String() || joined.str("role") != "editor" {
			t.Fatalf("accepted: %s", joined.raw)
		}
		w.login(t, w.a.emails["viewer"], w.a.pass["viewer"], w.b.id).must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/auth/accept-invite", w.a.tokens["viewer"], body).must(t, http.StatusUnauthorized) // spent
	})
}

// Granting a role needs every permission of that role: an admin-scope API key (which lacks ingest)
// cannot invite an editor or promote anyone to one, and cannot set a password at all.
func TestRoleGrantsCannotEscalate(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		key := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["owner"], map[string]any{"name": "ops", "scopes": []string{"admin"}}).
			must(t, http.StatusCreated).str("key")
		for _, role := range []string{"editor", "admin", "owner"} {
			if got := w.call(t, "POST", "/api/v1/users", key, map[string]any{"email": role + "-esc@alpha.example", "role": role,
				"password": "chosen-by-the-key"}); got.status != http.StatusForbidden && got.status != http.StatusBadRequest {
				t.Errorf("admin-scope key adding an %s: %d %s, want it refused", role, got.status, got.raw)
			}
			if got := w.call(t, "POST", "/api/v1/users", key, map[string]any{"email": role + "-esc@alpha.example", "role": role}); got.status != http.StatusForbidden {
				t.Errorf("admin-scope key inviting an %s: %d %s, want 403", role, got.status, got.raw)
			}
		}
		w.login(t, "editor-esc@alpha.example", "chosen-by-the-key", w.a.id).must(t, http.StatusUnauthorized)
		w.invite(t, key, "viewer-ok@alpha.example", "viewer")
		w.call(t, "PATCH", "/api/v1/users/"+w.a.users["viewer"].String(), key, map[string]any{"role": "editor"}).
			must(t, http.StatusForbidden)
		// An admin (a user, who holds ingest) may.
		w.call(t, "PATCH", "/api/v1/users/"+w.a.users["viewer"].String(), w.a.tokens["admin"], map[string]any{"role": "editor"}).
			must(t, http.StatusOK)
	})
}

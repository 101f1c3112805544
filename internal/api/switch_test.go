package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// tenantsIn reads the "tenants" or "items" list of an answer as id → the entry.
func tenantsIn(t *testing.T, r response, key string) map[string]map[string]any {
	t.Helper()
	list, _ := r.json[key].([]any)
	out := map[string]map[string]any{}
	for _, x := range list {
		e := x.(map[string]any)
		out[e["id"].(string)] = e
	}
	return out
}

// A member of tenants A and B: login without tenant_id lists both (only once the password is right),
// GET /auth/tenants lists them with the current one marked, and POST /auth/switch gives a pair for B with
// the role in B, in a new refresh family that leaves the first session alone.
func TestTenantSwitch(t *testing.T) {
	w := newWorld(t, testLimits)
	email, pass := w.a.emails["viewer"], w.a.pass["viewer"] // a viewer in A
	inv := w.invite(t, w.b.tokens["owner"], email, "editor")
	w.accept(t, inv.str("invite_token"), pass).must(t, http.StatusOK)

	// A wrong password answers exactly as for a member of one tenant: nothing about tenants.
	wrong := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "not-the-password"}).
		must(t, http.StatusUnauthorized)
	if strings.Contains(wrong.raw, "tenant") || strings.Contains(wrong.raw, w.b.id.String()) {
		t.Fatalf("a wrong password's answer mentions tenants: %s", wrong.raw)
	}
	choice := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": pass}).
		must(t, http.StatusBadRequest)
	if !strings.Contains(choice.raw, `"field":"tenant_id"`) {
		t.Fatalf("the choice does not name tenant_id: %s", choice.raw)
	}
	offered := tenantsIn(t, choice, "tenants")
	if len(offered) != 2 || offered[w.a.id.String()]["role"] != "viewer" || offered[w.b.id.String()]["role"] != "editor" ||
		offered[w.b.id.String()]["slug"] == "" || offered[w.b.id.String()]["name"] == "" {
		t.Fatalf("login offers %v, want A as viewer and B as editor with slug and name", choice.raw)
	}

	inA := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": pass, "tenant_id": w.a.id}).
		must(t, http.StatusOK)
	accessA := inA.str("access_token")
	mine := tenantsIn(t, w.call(t, "GET", "/api/v1/auth/tenants", accessA, nil).must(t, http.StatusOK), "items")
	if len(mine) != 2 || mine[w.a.id.String()]["current"] != true || mine[w.b.id.String()]["current"] != false ||
		mine[w.b.id.String()]["role"] != "editor" {
		t.Fatalf("GET /auth/tenants: %v", mine)
	}

	// Switch to B: B's tenant, the role in B (an editor creates hosts there), and nothing of A.
	toB := w.call(t, "POST", "/api/v1/auth/switch", accessA, map[string]any{"tenant_id": w.b.id}).must(t, http.StatusOK)
	if toB.str("refresh_token") == "" || toB.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("switch answer %s (Cache-Control %q)", toB.raw, toB.header.Get("Cache-Control"))
	}
	accessB := toB.str("access_token")
	if got := w.call(t, "GET", "/api/v1/tenant", accessB, nil).must(t, http.StatusOK); got.str("id") != w.b.id.String() {
		t.Fatalf("the switched token acts in %s, want B", got.str("id"))
	}
	w.call(t, "POST", "/api/v1/hosts", accessB, map[string]any{"name": "made-in-b"}).must(t, http.StatusCreated)
	w.call(t, "POST", "/api/v1/hosts", accessA, map[string]any{"name": "viewer-in-a"}).must(t, http.StatusForbidden)
	if now := tenantsIn(t, w.call(t, "GET", "/api/v1/auth/tenants", accessB, nil).must(t, http.StatusOK), "items"); now[w.b.id.String()]["current"] != true {
		t.Fatalf("after the switch B is not current: %v", now)
	}
	// Both families refresh on their own; logging out the old one (as the console does) leaves the new.
	w.call(t, "POST", "/api/v1/auth/logout", "", map[string]any{"refresh_token": inA.str("refresh_token")}).must(t, http.StatusNoContent)
	w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": inA.str("refresh_token")}).must(t, http.StatusUnauthorized)
	back := w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": toB.str("refresh_token")}).must(t, http.StatusOK)
	if got := w.call(t, "GET", "/api/v1/tenant", back.str("access_token"), nil).must(t, http.StatusOK); got.str("id") != w.b.id.String() {
		t.Fatalf("the refreshed switched token acts in %s, want B", got.str("id"))
	}

	// A tenant the user is not a member of answers 404 exactly like one that does not exist.
	onlyA := w.a.tokens["editor"]
	foreign := w.call(t, "POST", "/api/v1/auth/switch", onlyA, map[string]any{"tenant_id": w.b.id}).must(t, http.StatusNotFound)
	missing := w.call(t, "POST", "/api/v1/auth/switch", onlyA, map[string]any{"tenant_id": uuid.New()}).must(t, http.StatusNotFound)
	if foreign.str("title") != missing.str("title") || foreign.str("detail") != missing.str("detail") {
		t.Fatalf("a foreign tenant (%s) answers unlike a missing one (%s)", foreign.raw, missing.raw)
	}
	if one := tenantsIn(t, w.call(t, "GET", "/api/v1/auth/tenants", onlyA, nil).must(t, http.StatusOK), "items"); len(one) != 1 {
		t.Fatalf("a member of A only lists %v", one)
	}
	// Bad input names the field.
	if got := w.call(t, "POST", "/api/v1/auth/switch", accessA, map[string]any{}).must(t, http.StatusBadRequest); !strings.Contains(got.raw, `"field":"tenant_id"`) {
		t.Fatalf("switch without tenant_id: %s", got.raw)
	}
	w.call(t, "POST", "/api/v1/auth/switch", accessA, map[string]any{"tenant_id": "not-a-uuid"}).must(t, http.StatusBadRequest)
	w.call(t, "POST", "/api/v1/auth/switch", "", map[string]any{"tenant_id": w.b.id}).must(t, http.StatusUnauthorized)
	w.call(t, "GET", "/api/v1/auth/tenants", "", nil).must(t, http.StatusUnauthorized)

	// A disabled membership is not a tenant of the user any more: not listed, 404.
	w.call(t, "PATCH", "/api/v1/users/"+w.a.users["viewer"].String(), w.b.tokens["owner"], map[string]any{"disabled": true}).
		must(t, http.StatusOK)
	w.call(t, "POST", "/api/v1/auth/switch", accessA, map[string]any{"tenant_id": w.b.id}).must(t, http.StatusNotFound)
	if one := tenantsIn(t, w.call(t, "GET", "/api/v1/auth/tenants", accessA, nil).must(t, http.StatusOK), "items"); len(one) != 1 {
		t.Fatalf("a disabled membership is still listed: %v", one)
	}
}

// Only a user's access token lists tenants and switches: API keys and OAuth clients get 403.
func TestTenantSwitchIsForUsersOnly(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["owner"], map[string]any{"name": "k", "scopes": []string{"admin"}}).
		must(t, http.StatusCreated).str("key")
	client := w.call(t, "POST", "/api/v1/oauth-clients", w.a.tokens["owner"], map[string]any{"name": "c", "scopes": []string{"admin"}}).
		must(t, http.StatusCreated)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {client.str("client_id")}, "client_secret": {client.str("client_secret")}}
	resp, err := http.PostForm(w.srv.URL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var token map[string]any
	if err := decodeJSON(resp.Body, &token); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("client token: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	for name, cred := range map[string]string{"API key": key, "OAuth client": token["access_token"].(string)} {
		w.call(t, "GET", "/api/v1/auth/tenants", cred, nil).must(t, http.StatusForbidden)
		if got := w.call(t, "POST", "/api/v1/auth/switch", cred, map[string]any{"tenant_id": w.a.id}); got.status != http.StatusForbidden ||
			strings.Contains(got.raw, "access_token") {
			t.Errorf("%s switching: %d %s, want 403", name, got.status, got.raw)
		}
	}
}

// A suspended tenant is not offered, and switching to it answers 403 as login does.
func TestTenantSwitchToSuspendedTenant(t *testing.T) {
	w := newWorld(t, testLimits)
	email, pass := w.a.emails["admin"], w.a.pass["admin"]
	inv := w.invite(t, w.b.tokens["owner"], email, "viewer")
	w.accept(t, inv.str("invite_token"), pass).must(t, http.StatusOK)
	w.call(t, "POST", "/api/v1/operator/tenants/"+w.b.id.String()+"/suspend", operatorToken, nil).must(t, http.StatusOK)

	access := w.a.tokens["admin"]
	if got := w.call(t, "POST", "/api/v1/auth/switch", access, map[string]any{"tenant_id": w.b.id}); got.status != http.StatusForbidden ||
		!strings.Contains(got.raw, "suspended") {
		t.Fatalf("switching to a suspended tenant: %d %s", got.status, got.raw)
	}
	login := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": pass, "tenant_id": w.b.id})
	if login.status != http.StatusForbidden {
		t.Fatalf("login to the suspended tenant: %d, want 403 like the switch", login.status)
	}
	if mine := tenantsIn(t, w.call(t, "GET", "/api/v1/auth/tenants", access, nil).must(t, http.StatusOK), "items"); len(mine) != 1 ||
		mine[w.a.id.String()] == nil {
		t.Fatalf("a suspended tenant is listed: %v", mine)
	}
	// Resumed, it is offered and opens again.
	w.call(t, "POST", "/api/v1/operator/tenants/"+w.b.id.String()+"/resume", operatorToken, nil).must(t, http.StatusOK)
	w.call(t, "POST", "/api/v1/auth/switch", access, map[string]any{"tenant_id": w.b.id}).must(t, http.StatusOK)
}

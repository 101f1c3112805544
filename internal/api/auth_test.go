package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestLoginRefreshLogoutAndReuseDetection(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		login := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["editor"], "password": w.a.pass["editor"]}).
			must(t, http.StatusOK)
		if login.str("token_type") != "Bearer" || login.json["expires_in"].(float64) <= 0 || login.str("refresh_token") == "" {
			t.Fatalf("login answer %s", login.raw)
		}
		w.call(t, "GET", "/api/v1/tenant", login.str("access_token"), nil).must(t, http.StatusOK)

		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["editor"], "password": "wrong-password"}).
			must(t, http.StatusUnauthorized)
		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": "nobody@nowhere.example", "password": "whatever-it-is"}).
			must(t, http.StatusUnauthorized)

		r1 := login.str("refresh_token")
		second := w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": r1}).must(t, http.StatusOK)
		r2 := second.str("refresh_token")
		if r2 == r1 || second.str("access_token") == "" {
			t.Fatalf("refresh did not rotate: %s", second.raw)
		}
		// R1 again: reuse. It fails, and revokes the family, so R2 is dead too.
		w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": r1}).must(t, http.StatusUnauthorized)
		w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": r2}).must(t, http.StatusUnauthorized)

		// Logout ends a fresh family.
		third := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["editor"], "password": w.a.pass["editor"]}).
			must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/auth/logout", "", map[string]any{"refresh_token": third.str("refresh_token")}).must(t, http.StatusNoContent)
		w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": third.str("refresh_token")}).must(t, http.StatusUnauthorized)

		// A password change revokes every refresh token of the user, and the new password works.
		fourth := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["editor"], "password": w.a.pass["editor"]}).
			must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/auth/password", fourth.str("access_token"),
			map[string]any{"current_password": "not-the-password", "new_password": "a-new-long-password"}).must(t, http.StatusBadRequest)
		w.call(t, "POST", "/api/v1/auth/password", fourth.str("access_token"),
			map[string]any{"current_password": w.a.pass["editor"], "new_password": "a-new-long-password"}).must(t, http.StatusNoContent)
		w.call(t, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": fourth.str("refresh_token")}).must(t, http.StatusUnauthorized)
		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["editor"], "password": "a-new-long-password"}).
			must(t, http.StatusOK)

		// A user of several tenants must say which; the token then acts in that tenant.
		inv := w.invite(t, w.b.tokens["owner"], w.a.emails["viewer"], "editor")
		w.accept(t, inv.str("invite_token"), w.a.pass["viewer"]).must(t, http.StatusOK)
		both := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["viewer"], "password": w.a.pass["viewer"]})
		if both.status != http.StatusBadRequest || !strings.Contains(both.raw, "tenant_id") {
			t.Fatalf("login of a member of two tenants without tenant_id: %d %s", both.status, both.raw)
		}
		inB := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["viewer"], "password": w.a.pass["viewer"],
			"tenant_id": w.b.id}).must(t, http.StatusOK)
		if got := w.call(t, "GET", "/api/v1/tenant", inB.str("access_token"), nil).must(t, http.StatusOK); got.str("id") != w.b.id.String() {
			t.Fatalf("token for tenant B shows tenant %s", got.str("id"))
		}
	})
}

// signingKey reads the server's current signing key from the database, to forge tokens that differ
// from a valid one in exactly one way.
func signingKey(t *testing.T, w *world) (string, ed25519.PrivateKey) {
	t.Helper()
	var kid string
	var seed []byte
	if err := w.d.Pool.QueryRow(context.Background(),
		"SELECT kid, private_key FROM infrawatch.signing_keys ORDER BY created_at DESC LIMIT 1").Scan(&kid, &seed); err != nil {
		t.Fatal(err)
	}
	return kid, ed25519.NewKeyFromSeed(seed)
}

func TestTokenAttacksAnswer401(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		kid, key := signingKey(t, w)
		owner := "user:" + w.a.users["owner"].String()
		now := time.Now()
		claims := func(mut func(*auth.AccessClaims)) *auth.AccessClaims {
			c := &auth.AccessClaims{Tenant: w.a.id, Role: "owner", RegisteredClaims: jwt.RegisteredClaims{
				Issuer: auth.DefaultIssuer, Audience: jwt.ClaimStrings{auth.DefaultAudience}, Subject: owner,
				IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
				ID: uuid.NewString()}}
			if mut != nil {
				mut(c)
			}
			return c
		}
		sign := func(method jwt.SigningMethod, k any, c *auth.AccessClaims, header map[string]any) string {
			tok := jwt.NewWithClaims(method, c)
			tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
			for h, v := range header {
				if v == nil {
					delete(tok.Header, h)
				} else {
					tok.Header[h] = v
				}
			}
			s, err := tok.SignedString(k)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		valid := sign(jwt.SigningMethodEdDSA, key, claims(nil), nil)
		w.call(t, "GET", "/api/v1/tenant", valid, nil).must(t, http.StatusOK) // the control: forging works

		parts := strings.Split(valid, ".")
		b64 := base64.RawURLEncoding.EncodeToString
		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
		pub := key.Public().(ed25519.PublicKey)
		cases := map[string]string{
			"stripped signature":        parts[0] + "." + parts[1] + ".",
			"no signature part":         parts[0] + "." + parts[1],
			"signed by another key":     sign(jwt.SigningMethodEdDSA, otherKey, claims(nil), nil),
			"HS256 with the public key": sign(jwt.SigningMethodHS256, []byte(pub), claims(nil), nil),
			"unknown kid":               sign(jwt.SigningMethodEdDSA, key, claims(nil), map[string]any{"kid": "nope"}),
			"oversized kid":             sign(jwt.SigningMethodEdDSA, key, claims(nil), map[string]any{"kid": strings.Repeat("k", 10000)}),
			"path kid":                  sign(jwt.SigningMethodEdDSA, key, claims(nil), map[string]any{"kid": "../../dev/null"}),
			"missing typ":               sign(jwt.SigningMethodEdDSA, key, claims(nil), map[string]any{"typ": nil}),
			"expired": sign(jwt.SigningMethodEdDSA, key, claims(func(c *auth.AccessClaims) {
				c.ExpiresAt = jwt.NewNumericDate(now.Add(-2 * time.Minute))
			}), nil),
			"not yet valid": sign(jwt.SigningMethodEdDSA, key, claims(func(c *auth.AccessClaims) {
				c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute))
			}), nil),
			"no expiry": sign(jwt.SigningMethodEdDSA, key, claims(func(c *auth.AccessClaims) { c.ExpiresAt = nil }), nil),
			"wrong audience": sign(jwt.SigningMethodEdDSA, key, claims(func(c *auth.AccessClaims) {
				c.Audience = jwt.ClaimStrings{"someone-else"}
			}), nil),
			"wrong issuer": sign(jwt.SigningMethodEdDSA, key, claims(func(c *auth.AccessClaims) { c.Issuer = "evil" }), nil),
			"tampered payload: tenant B": parts[0] + "." + b64(mustJSON(t, claims(func(c *auth.AccessClaims) { c.Tenant = w.b.id }))) +
				"." + parts[2],
			"tampered payload: other user": parts[0] + "." + b64(mustJSON(t, claims(func(c *auth.AccessClaims) {
				c.Subject = "user:" + w.b.users["owner"].String()
			}))) + "." + parts[2],
			"member of another tenant": sign(jwt.SigningMethodEdDSA, key, claims(func(c *auth.AccessClaims) { c.Tenant = w.b.id }), nil),
			"garbage":                  "not-a-token",
			"a megabyte of garbage":    strings.Repeat("x.", 512*1024),
		}
		for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
			header := b64([]byte(`{"alg":"` + alg + `","typ":"at+jwt","kid":"` + kid + `"}`))
			cases["alg "+alg] = header + "." + parts[1] + "."
			cases["alg "+alg+" with signature"] = header + "." + parts[1] + "." + parts[2]
		}
		for name, token := range cases {
			t.Run(name, func(t *testing.T) {
				r := w.call(t, "GET", "/api/v1/tenant", token, nil)
				if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("status %d, want 401 with WWW-Authenticate: %s", r.status, r.raw)
				}
			})
		}
		// The same with no credential, another scheme, or an empty bearer.
		for _, h := range []string{"", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"} {
			req, _ := http.NewRequest("GET", w.srv.URL+"/api/v1/tenant", nil)
			if h != "" {
				req.Header.Set("Authorization", h)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %q: %d, want 401", h, resp.StatusCode)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAPIKeysScopesAndImmediateRevocation(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		created := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["admin"], map[string]any{"name": "grafana", "scopes": []string{"read"}}).
			must(t, http.StatusCreated)
		key, prefix := created.str("key"), created.str("prefix")
		if !strings.HasPrefix(key, prefix+"_") || !strings.HasPrefix(prefix, "iwk_") {
			t.Fatalf("key %q with prefix %q", key, prefix)
		}
		list := w.call(t, "GET", "/api/v1/api-keys", w.a.tokens["admin"], nil).must(t, http.StatusOK)
		if strings.Contains(list.raw, key) || !strings.Contains(list.raw, prefix) {
			t.Fatalf("the list must show the prefix and never the key: %s", list.raw)
		}
		var stored []byte
		if err := w.d.Pool.QueryRow(context.Background(), "SELECT secret_hash FROM app.api_keys WHERE prefix = $1", prefix).Scan(&stored); err != nil ||
			strings.Contains(string(stored), strings.TrimPrefix(key, prefix+"_")) {
			t.Fatalf("the secret is stored in the clear (or not at all: %v)", err)
		}

		w.call(t, "GET", "/api/v1/hosts", key, nil).must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/hosts", key, map[string]any{"name": "x"}).must(t, http.StatusForbidden)
		wrong := key[:len(key)-1] + "A" // the secret with its last character changed
		if key[len(key)-1] == 'A' {
			wrong = key[:len(key)-1] + "B"
		}
		w.call(t, "GET", "/api/v1/hosts", wrong, nil).must(t, http.StatusUnauthorized)

		w.call(t, "DELETE", "/api/v1/api-keys/"+created.id(t), w.a.tokens["admin"], nil).must(t, http.StatusNoContent)
		w.call(t, "GET", "/api/v1/hosts", key, nil).must(t, http.StatusUnauthorized) // at once, no cache

		ingest := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["admin"], map[string]any{"name": "agent", "scopes": []string{"ingest"}}).
			must(t, http.StatusCreated)
		w.call(t, "GET", "/api/v1/hosts", ingest.str("key"), nil).must(t, http.StatusForbidden)

		expired := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["admin"], map[string]any{"name": "old", "scopes": []string{"read"},
			"expires_at": time.Now().Add(-time.Hour)})
		if expired.status != http.StatusBadRequest || !strings.Contains(expired.raw, "expires_at") {
			t.Fatalf("a key expiring in the past: %d %s", expired.status, expired.raw)
		}
		// A key cannot mint a key more powerful than itself: an admin-scoped key holds no ingest permission.
		adminKey := w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["admin"], map[string]any{"name": "ops", "scopes": []string{"admin"}}).
			must(t, http.StatusCreated).str("key")
		if got := w.call(t, "POST", "/api/v1/api-keys", adminKey, map[string]any{"name": "x", "scopes": []string{"ingest"}}); got.status != 400 ||
			!strings.Contains(got.raw, "grants more than") {
			t.Errorf("admin-scoped key minting an ingest key: %d %s", got.status, got.raw)
		}
		w.call(t, "POST", "/api/v1/api-keys", adminKey, map[string]any{"name": "x", "scopes": []string{"read", "write"}}).must(t, http.StatusCreated)
		// Editors cannot manage keys at all.
		w.call(t, "POST", "/api/v1/api-keys", w.a.tokens["editor"], map[string]any{"name": "x", "scopes": []string{"read"}}).
			must(t, http.StatusForbidden)
	})
}

func TestOAuthClientCredentials(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		created := w.call(t, "POST", "/api/v1/oauth-clients", w.a.tokens["admin"],
			map[string]any{"name": "backstage", "scopes": []string{"read", "write"}}).must(t, http.StatusCreated)
		id, secret := created.str("client_id"), created.str("client_secret")

		token := func(form url.Values, basic bool) response {
			req, _ := http.NewRequest("POST", w.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if basic {
				req.SetBasicAuth(id, secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var r response
			r.status, r.header = resp.StatusCode, resp.Header
			var body map[string]any
			_ = decodeJSON(resp.Body, &body)
			r.json = body
			return r
		}
		ok := token(url.Values{"grant_type": {"client_credentials"}}, true).must(t, http.StatusOK)
		if ok.str("scope") != "read write" || ok.str("refresh_token") != "" {
			t.Fatalf("token answer %v", ok.json)
		}
		access := ok.str("access_token")
		w.call(t, "POST", "/api/v1/hosts", access, map[string]any{"name": "from-client"}).must(t, http.StatusCreated)
		w.call(t, "GET", "/api/v1/users", access, nil).must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/api-keys", access, map[string]any{"name": "x", "scopes": []string{"read"}}).must(t, http.StatusForbidden)

		narrowed := token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "client_id": {id}, "client_secret": {secret}}, false).
			must(t, http.StatusOK)
		w.call(t, "POST", "/api/v1/hosts", narrowed.str("access_token"), map[string]any{"name": "nope"}).must(t, http.StatusForbidden)

		if r := token(url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, true); r.status != 400 || r.str("error") != "invalid_scope" {
			t.Errorf("scope beyond the client's: %d %v", r.status, r.json)
		}
		if r := token(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"wrong"}}, false); r.status != 401 ||
			r.str("error") != "invalid_client" {
			t.Errorf("wrong secret: %d %v", r.status, r.json)
		}
		if r := token(url.Values{"grant_type": {"password"}}, true); r.status != 400 || r.str("error") != "unsupported_grant_type" {
			t.Errorf("password grant: %d %v", r.status, r.json)
		}
		for _, bad := range []string{"cli\x00ent", "\xff\xfe"} {
			for _, field := range []string{"client_id", "client_secret", "refresh_token", "scope"} {
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
				if field == "refresh_token" {
					form = url.Values{"grant_type": {"refresh_token"}}
				}
				form.Set(field, bad)
				if r := token(form, false); r.status != 400 || r.str("error") != "invalid_request" ||
					!strings.Contains(r.str("error_description"), field) {
					t.Errorf("%s %q: %d %v, want 400 invalid_request naming it", field, bad, r.status, r.json)
				}
			}
		}
		// refresh_token grant with a user's refresh token
		login := w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": w.a.emails["viewer"], "password": w.a.pass["viewer"]}).
			must(t, http.StatusOK)
		if r := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.str("refresh_token")}}, false); r.status != 200 ||
			r.str("access_token") == "" {
			t.Errorf("refresh_token grant: %d %v", r.status, r.json)
		}

		w.call(t, "DELETE", "/api/v1/oauth-clients/"+created.id(t), w.a.tokens["admin"], nil).must(t, http.StatusNoContent)
		w.call(t, "GET", "/api/v1/hosts", access, nil).must(t, http.StatusUnauthorized)
		token(url.Values{"grant_type": {"client_credentials"}}, true).must(t, http.StatusUnauthorized)
	})
}

func TestInvitationSetsThePassword(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		added := w.invite(t, w.a.tokens["admin"], "new@alpha.example", "viewer")
		if added.str("status") != "pending" || !strings.HasPrefix(added.str("invite_token"), "iwi_") {
			t.Fatalf("added %s", added.raw)
		}
		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": "new@alpha.example", "password": "anything-at-all"}).
			must(t, http.StatusUnauthorized)
		w.accept(t, added.str("invite_token"), "short").must(t, http.StatusBadRequest)
		joined := w.call(t, "POST", "/api/v1/auth/accept-invite", "", map[string]any{"token": added.str("invite_token"),
			"password": "my-own-password", "name": "New Person"}).must(t, http.StatusOK)
		if joined.str("tenant_id") != w.a.id.String() || joined.str("email") != "new@alpha.example" || joined.str("role") != "viewer" {
			t.Fatalf("accepted: %s", joined.raw)
		}
		w.accept(t, added.str("invite_token"), "second-try-password").must(t, http.StatusUnauthorized)
		w.call(t, "POST", "/api/v1/auth/login", "", map[string]any{"email": "new@alpha.example", "password": "my-own-password"}).
			must(t, http.StatusOK)
		member := w.call(t, "GET", "/api/v1/users/"+joined.str("user_id"), w.a.tokens["viewer"], nil).must(t, http.StatusOK)
		if member.str("name") != "New Person" || member.str("role") != "viewer" {
			t.Fatalf("member: %s", member.raw)
		}
	})
}

package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/traps"
)

// Trap credentials through the API: secrets are never answered, a community (or a v3 user with its
// engine) belongs to one tenant only, bad fields are named, the mask keeps a stored password, and what is
// stored is the community's digest and the passwords sealed.
func TestTrapCredentials(t *testing.T) {
	w := newWorld(t, testLimits)
	admin, adminB := w.a.tokens["admin"], w.b.tokens["admin"]
	ctx := context.Background()

	community := w.call(t, "POST", "/api/v1/trap-credentials", admin, map[string]any{"name": "switches", "kind": "community",
		"community": "s3cret-community"}).must(t, http.StatusCreated)
	if community.json["community"] != "********" || strings.Contains(community.raw, "s3cret") {
		t.Errorf("created community: %s", community.raw)
	}
	var digest []byte
	if err := w.d.Pool.QueryRow(ctx, `SELECT community_digest FROM app.trap_credentials WHERE id = $1`, community.id(t)).
		Scan(&digest); err != nil || string(digest) != string(traps.CommunityDigest("s3cret-community")) {
		t.Errorf("stored digest %x (%v)", digest, err)
	}
	// The same community in another tenant, or again in this one: 409, saying nothing of whose it is.
	for _, token := range []string{adminB, admin} {
		got := w.call(t, "POST", "/api/v1/trap-credentials", token, map[string]any{"name": "other", "kind": "community",
			"community": "s3cret-community"}).must(t, http.StatusConflict)
		if !strings.Contains(got.raw, "belongs to one tenant only") {
			t.Errorf("conflict: %s", got.raw)
		}
	}

	user := w.call(t, "POST", "/api/v1/trap-credentials", admin, map[string]any{"name": "core v3", "kind": "usm", "username": "monitor",
		"engine_id": "0x8000000001020304", "security_level": "authPriv", "auth_protocol": "SHA", "auth_password": "auth-password-1",
		"priv_protocol": "AES", "priv_password": "priv-password-1"}).must(t, http.StatusCreated)
	if user.json["auth_password"] != "********" || user.json["priv_password"] != "********" || user.json["engine_id"] != "8000000001020304" ||
		strings.Contains(user.raw, "password-1") {
		t.Errorf("created user: %s", user.raw)
	}
	var sealed []byte
	if err := w.d.Pool.QueryRow(ctx, `SELECT secrets FROM app.trap_credentials WHERE id = $1`, user.id(t)).Scan(&sealed); err != nil ||
		len(sealed) == 0 || strings.Contains(string(sealed), "password-1") {
		t.Errorf("stored secrets %q (%v)", sealed, err)
	}
	// The mask keeps the passwords; a security level that needs none drops them, and refuses a protocol.
	patched := w.call(t, "PATCH", "/api/v1/trap-credentials/"+user.id(t), admin, map[string]any{"name": "core", "auth_password": "********"}).
		must(t, http.StatusOK)
	if patched.json["name"] != "core" || patched.json["auth_password"] != "********" {
		t.Errorf("patched: %s", patched.raw)
	}
	w.call(t, "PATCH", "/api/v1/trap-credentials/"+user.id(t), admin, map[string]any{"security_level": "noAuthNoPriv",
		"auth_protocol": "SHA"}).must(t, http.StatusBadRequest)
	plain := w.call(t, "PATCH", "/api/v1/trap-credentials/"+user.id(t), admin, map[string]any{"security_level": "noAuthNoPriv"}).
		must(t, http.StatusOK)
	if plain.json["auth_password"] != nil || plain.json["priv_protocol"] != nil {
		t.Errorf("noAuthNoPriv: %s", plain.raw)
	}

	// Bad fields, each named.
	for body, fields := range map[string][]string{
		`{"name":"x","kind":"usm","username":"u","security_level":"authPriv","auth_protocol":"SHA1","auth_password":"short"}`: {
			"auth_password", "auth_protocol", "priv_password", "priv_protocol"},
		`{"name":"x","kind":"community"}`:                                                           {"community"},
		`{"name":"x","kind":"community","community":"c","username":"u"}`:                            {"username"},
		`{"name":"x","kind":"usm","username":"u","engine_id":"zz","security_level":"noAuthNoPriv"}`: {"engine_id"},
		`{"kind":"snmp"}`: {"kind", "name"},
	} {
		got := w.call(t, "POST", "/api/v1/trap-credentials", admin, body).must(t, http.StatusBadRequest)
		for _, f := range fields {
			if !strings.Contains(got.raw, `"field":"`+f+`"`) {
				t.Errorf("%s: %s does not name %s", body, got.raw, f)
			}
		}
	}
	// B sees none of A's.
	list := w.call(t, "GET", "/api/v1/trap-credentials", adminB, nil).must(t, http.StatusOK)
	if n := len(list.json["items"].([]any)); n != 0 {
		t.Errorf("B lists %d of A's credentials: %s", n, list.raw)
	}
	w.call(t, "GET", "/api/v1/trap-credentials/"+community.id(t), adminB, nil).must(t, http.StatusNotFound)
	w.call(t, "DELETE", "/api/v1/trap-credentials/"+community.id(t), admin, nil).must(t, http.StatusNoContent)
	// Deleted, the community is free for B.
	w.call(t, "POST", "/api/v1/trap-credentials", adminB, map[string]any{"name": "mine now", "kind": "community",
		"community": "s3cret-community"}).must(t, http.StatusCreated)
}

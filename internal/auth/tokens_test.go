package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// leeway is the default clock-skew tolerance the fixture's Tokens runs with.
const leeway = auth.DefaultLeeway

// tokenFixture is a Tokens on a database of its own, with the private half of its signing key so that
// tests can forge tokens that are validly signed but wrong in one other respect.
type tokenFixture struct {
	d      *dbtest.DB
	tokens *auth.Tokens
	kid    string
	key    ed25519.PrivateKey
	tenant uuid.UUID
}

func setupTokens(t *testing.T) tokenFixture {
	t.Helper()
	d := dbtest.New(t, db.FlavorPostgres)
	tokens, err := auth.NewTokens(context.Background(), auth.TokenConfig{}, d.System())
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	kid, key := signingKey(t, d, "")
	return tokenFixture{d: d, tokens: tokens, kid: kid, key: key, tenant: uuid.New()}
}

// signingKey reads a usable key from the table: the one with kid, or the newest when kid is empty.
func signingKey(t *testing.T, d *dbtest.DB, kid string) (string, ed25519.PrivateKey) {
	t.Helper()
	rows, err := dbsqlc.New(d.Pool).SigningKeyListUsable(context.Background())
	if err != nil {
		t.Fatalf("list signing keys: %v", err)
	}
	for _, row := range rows {
		if kid == "" || row.Kid == kid {
			return row.Kid, ed25519.NewKeyFromSeed(row.PrivateKey)
		}
	}
	t.Fatalf("no usable signing key %q among %d", kid, len(rows))
	return "", nil
}

// header is the header Issue writes, for forging variants of it.
func (f tokenFixture) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": f.kid}
}

// claims are valid claims for f's Tokens at now.
func (f tokenFixture) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":    auth.DefaultIssuer,
		"aud":    auth.DefaultAudience,
		"sub":    uuid.NewString(),
		"tenant": f.tenant.String(),
		"role":   "viewer",
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"exp":    now.Add(auth.DefaultAccessTTL).Unix(),
		"jti":    uuid.NewString(),
	}
}

// signEd25519 signs with f's real key, so only what the test changed makes the token invalid.
func (f tokenFixture) signEd25519(input string) string {
	return segment(ed25519.Sign(f.key, []byte(input)))
}

func segment(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return segment(b)
}

// forge builds header.payload.signature, where sign gets the signing input and returns the encoded
// signature.
func forge(t *testing.T, header, claims map[string]any, sign func(input string) string) string {
	t.Helper()
	input := jsonSegment(t, header) + "." + jsonSegment(t, claims)
	return input + "." + sign(input)
}

func with(m map[string]any, key string, value any) map[string]any {
	m[key] = value
	return m
}

func without(m map[string]any, key string) map[string]any {
	delete(m, key)
	return m
}

// headerOf decodes the header of a compact JWT.
func headerOf(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("decode header: %v", err)
	}
	return h
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)

	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signOther := func(input string) string { return segment(ed25519.Sign(otherKey, []byte(input))) }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	empty := func(string) string { return "" }

	// A key server that counts requests: a token pointing Verify at it must never make it dial.
	var dials atomic.Int64
	keyServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		dials.Add(1)
		http.Error(w, "no", http.StatusTeapot)
	}))
	t.Cleanup(keyServer.Close)

	issued, _, err := f.tokens.Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: f.tenant, Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}

	type testCase struct {
		name  string
		token func(t *testing.T, now time.Time) string
	}
	var cases []testCase

	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		noneToken := func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "alg", alg), f.claims(now), empty)
		}
		cases = append(cases,
			testCase{"alg " + alg + " empty signature", noneToken},
			testCase{"alg " + alg + " no signature segment", func(t *testing.T, now time.Time) string {
				return strings.TrimSuffix(noneToken(t, now), ".")
			}},
			testCase{"alg " + alg + " trailing dot", func(t *testing.T, now time.Time) string {
				return noneToken(t, now) + "."
			}},
		)
	}

	cases = append(cases, []testCase{
		{"signature stripped", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), f.claims(now), empty)
		}},
		{"signature stripped from an issued token", func(*testing.T, time.Time) string {
			return issued[:strings.LastIndex(issued, ".")+1]
		}},
		{"signature of another key with the same kid", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), f.claims(now), signOther)
		}},
		{"HS256 keyed with the Ed25519 public key", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "alg", "HS256"), f.claims(now), func(input string) string {
				mac := hmac.New(sha256.New, f.key.Public().(ed25519.PublicKey))
				mac.Write([]byte(input))
				return segment(mac.Sum(nil))
			})
		}},
		{"RS256 with a fresh RSA key", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "alg", "RS256"), f.claims(now), func(input string) string {
				sig, err := jwt.SigningMethodRS256.Sign(input, rsaKey)
				if err != nil {
					t.Fatal(err)
				}
				return segment(sig)
			})
		}},
		{"unknown kid", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "kid", "00000000deadbeef"), f.claims(now), f.signEd25519)
		}},
		{"kid of 10 KB", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "kid", strings.Repeat("k", 10<<10)), f.claims(now), f.signEd25519)
		}},
		{"kid of 65 characters", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "kid", f.kid+strings.Repeat("0", 65-len(f.kid))), f.claims(now), f.signEd25519)
		}},
		{"kid is a path", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "kid", "../../dev/null"), f.claims(now), f.signEd25519)
		}},
		{"kid is SQL", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "kid", "' UNION SELECT 'k' --"), f.claims(now), f.signEd25519)
		}},
		{"kid is a number", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "kid", 1), f.claims(now), f.signEd25519)
		}},
		{"kid missing", func(t *testing.T, now time.Time) string {
			return forge(t, without(f.header(), "kid"), f.claims(now), f.signEd25519)
		}},
		{"typ missing", func(t *testing.T, now time.Time) string {
			return forge(t, without(f.header(), "typ"), f.claims(now), f.signEd25519)
		}},
		{"typ JWT", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "typ", "JWT"), f.claims(now), f.signEd25519)
		}},
		{"jku to a closed port, bad signature", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "jku", "http://127.0.0.1:1/keys"), f.claims(now), signOther)
		}},
		{"jku to a listening server, bad signature", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "jku", keyServer.URL+"/keys"), f.claims(now), signOther)
		}},
		{"x5u to a listening server, bad signature", func(t *testing.T, now time.Time) string {
			return forge(t, with(f.header(), "x5u", keyServer.URL+"/cert.pem"), f.claims(now), signOther)
		}},
		{"embedded jwk of the signing key", func(t *testing.T, now time.Time) string {
			jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": segment(otherKey.Public().(ed25519.PublicKey))}
			return forge(t, with(f.header(), "jwk", jwk), f.claims(now), signOther)
		}},
		{"expired beyond the leeway", func(t *testing.T, now time.Time) string {
			c := f.claims(now.Add(-time.Hour))
			return forge(t, f.header(), with(c, "exp", now.Add(-leeway-time.Second).Unix()), f.signEd25519)
		}},
		{"not yet valid", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), with(f.claims(now), "nbf", now.Add(5*time.Minute).Unix()), f.signEd25519)
		}},
		{"exp missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "exp"), f.signEd25519)
		}},
		{"nbf missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "nbf"), f.signEd25519)
		}},
		{"iat missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "iat"), f.signEd25519)
		}},
		{"iat in the future", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), with(f.claims(now), "iat", now.Add(5*time.Minute).Unix()), f.signEd25519)
		}},
		{"exp not a number", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), with(f.claims(now), "exp", "never"), f.signEd25519)
		}},
		{"wrong audience", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), with(f.claims(now), "aud", "someone-else"), f.signEd25519)
		}},
		{"audience missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "aud"), f.signEd25519)
		}},
		{"wrong issuer", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), with(f.claims(now), "iss", "https://evil.example"), f.signEd25519)
		}},
		{"issuer missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "iss"), f.signEd25519)
		}},
		{"tenant missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "tenant"), f.signEd25519)
		}},
		{"tenant nil", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), with(f.claims(now), "tenant", uuid.Nil.String()), f.signEd25519)
		}},
		{"subject missing", func(t *testing.T, now time.Time) string {
			return forge(t, f.header(), without(f.claims(now), "sub"), f.signEd25519)
		}},
		{"payload tampered after signing", func(t *testing.T, _ time.Time) string {
			parts := strings.Split(issued, ".")
			raw, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]any
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			c["tenant"] = uuid.NewString()
			return parts[0] + "." + jsonSegment(t, c) + "." + parts[2]
		}},
		{"1 MB of garbage", func(*testing.T, time.Time) string { return strings.Repeat("A.", 1<<19) }},
		{"empty", func(*testing.T, time.Time) string { return "" }},
		{"two segments", func(*testing.T, time.Time) string { return "a.b" }},
		{"four segments", func(*testing.T, time.Time) string { return "a.b.c.d" }},
		{"issued token with an extra segment", func(*testing.T, time.Time) string { return issued + "." }},
	}...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token := tc.token(t, time.Now())
			claims, err := f.tokens.Verify(token)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", claims, err)
			}
			if claims != nil {
				t.Errorf("Verify returned claims %+v with its error", claims)
			}
			t.Logf("refused: %.300v", err)
		})
	}
	t.Cleanup(func() {
		if n := dials.Load(); n != 0 {
			t.Errorf("Verify made %d requests to a key URL from a token header", n)
		}
	})
}

// The forged tokens above fail for one reason only: the same construction with nothing wrong verifies.
func TestVerifyAcceptsForgedControl(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)
	now := time.Now()
	for name, token := range map[string]string{
		"valid":                 forge(t, f.header(), f.claims(now), f.signEd25519),
		"expired within leeway": forge(t, f.header(), with(f.claims(now.Add(-time.Hour)), "exp", now.Add(-leeway+5*time.Second).Unix()), f.signEd25519),
		"nbf within leeway":     forge(t, f.header(), with(f.claims(now), "nbf", now.Add(leeway-5*time.Second).Unix()), f.signEd25519),
		"audience as an array":  forge(t, f.header(), with(f.claims(now), "aud", []string{"other", auth.DefaultAudience}), f.signEd25519),
	} {
		t.Run(name, func(t *testing.T) {
			claims, err := f.tokens.Verify(token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Tenant != f.tenant {
				t.Errorf("tenant = %s, want %s", claims.Tenant, f.tenant)
			}
		})
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)
	subject := uuid.NewString()
	before := time.Now().Truncate(time.Second)
	token, expiresIn, err := f.tokens.Issue(auth.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: subject, Issuer: "ignored", ID: "ignored"},
		Tenant:           f.tenant,
		Role:             "admin",
		Scope:            "read write",
	})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if expiresIn != auth.DefaultAccessTTL {
		t.Errorf("expiresIn = %s, want %s", expiresIn, auth.DefaultAccessTTL)
	}
	h := headerOf(t, token)
	if h["alg"] != "EdDSA" || h["typ"] != "at+jwt" || h["kid"] != f.kid {
		t.Errorf("header = %v, want alg EdDSA, typ at+jwt, kid %s", h, f.kid)
	}

	claims, err := f.tokens.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.Tenant != f.tenant || claims.Role != "admin" || claims.Scope != "read write" || claims.Subject != subject {
		t.Errorf("claims = tenant %s role %q scope %q sub %q; want %s admin %q %s",
			claims.Tenant, claims.Role, claims.Scope, claims.Subject, f.tenant, "read write", subject)
	}
	if claims.Issuer != auth.DefaultIssuer || len(claims.Audience) != 1 || claims.Audience[0] != auth.DefaultAudience {
		t.Errorf("iss = %q, aud = %q", claims.Issuer, claims.Audience)
	}
	if _, err := uuid.Parse(claims.ID); err != nil {
		t.Errorf("jti = %q, want a UUID", claims.ID)
	}
	if claims.IssuedAt.Before(before) || !claims.NotBefore.Equal(claims.IssuedAt.Time) ||
		claims.ExpiresAt.Sub(claims.IssuedAt.Time) != auth.DefaultAccessTTL {
		t.Errorf("iat %v nbf %v exp %v: want iat = nbf = now and exp = iat + %s",
			claims.IssuedAt, claims.NotBefore, claims.ExpiresAt, auth.DefaultAccessTTL)
	}

	again, _, err := f.tokens.Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: subject}, Tenant: f.tenant})
	if err != nil {
		t.Fatal(err)
	}
	if againClaims, err := f.tokens.Verify(again); err != nil || againClaims.ID == claims.ID {
		t.Errorf("second token: err %v, jti %q repeats %q", err, againClaims.ID, claims.ID)
	}
}

func TestIssueRefusesIncompleteClaims(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)
	for name, c := range map[string]auth.AccessClaims{
		"no tenant":  {RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}},
		"no subject": {Tenant: f.tenant},
	} {
		if token, _, err := f.tokens.Issue(c); err == nil {
			t.Errorf("%s: Issue = %q, want an error", name, token)
		}
	}
}

func TestIssueHonoursConfig(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	cfg := auth.TokenConfig{Issuer: "https://iw.example", Audience: "iw-test", AccessTTL: time.Minute, Leeway: time.Second}
	tokens, err := auth.NewTokens(ctx, cfg, d.System())
	if err != nil {
		t.Fatal(err)
	}
	token, expiresIn, err := tokens.Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := tokens.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if expiresIn != time.Minute || claims.Issuer != cfg.Issuer || claims.Audience[0] != cfg.Audience ||
		claims.ExpiresAt.Sub(claims.IssuedAt.Time) != time.Minute {
		t.Errorf("expiresIn %s, iss %q, aud %q, lifetime %s", expiresIn, claims.Issuer, claims.Audience,
			claims.ExpiresAt.Sub(claims.IssuedAt.Time))
	}

	// The same keys under the default configuration: another issuer's and audience's token is refused.
	defaults, err := auth.NewTokens(ctx, auth.TokenConfig{}, d.System())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := defaults.Verify(token); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify under another issuer and audience: err = %v, want ErrInvalidToken", err)
	}

	if _, err := auth.NewTokens(ctx, auth.TokenConfig{AccessTTL: -time.Minute}, d.System()); err == nil {
		t.Error("NewTokens accepted a negative access TTL")
	}
}

func TestRotateSigningKey(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)
	ctx := context.Background()
	// Another replica on the same database, which learns about the rotation only when it reloads.
	replica, err := auth.NewTokens(ctx, auth.TokenConfig{}, f.d.System())
	if err != nil {
		t.Fatal(err)
	}
	claims := auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: f.tenant}
	old, _, err := f.tokens.Issue(claims)
	if err != nil {
		t.Fatal(err)
	}

	kid, err := auth.RotateSigningKey(ctx, f.d.System())
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	if kid == f.kid || len(kid) != 16 {
		t.Fatalf("new kid = %q (old %q), want 16 fresh hex characters", kid, f.kid)
	}
	if err := f.tokens.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}

	if _, err := f.tokens.Verify(old); err != nil {
		t.Errorf("token of the previous key after rotation: %v", err)
	}
	fresh, _, err := f.tokens.Issue(claims)
	if err != nil {
		t.Fatal(err)
	}
	if got := headerOf(t, fresh)["kid"]; got != kid {
		t.Errorf("kid of a token issued after rotation = %v, want %s", got, kid)
	}
	if _, err := f.tokens.Verify(fresh); err != nil {
		t.Errorf("token of the new key: %v", err)
	}

	if _, err := replica.Verify(fresh); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("replica before Reload: err = %v, want ErrInvalidToken (it cannot know the new key)", err)
	}
	if err := replica.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Verify(fresh); err != nil {
		t.Errorf("replica after Reload: %v", err)
	}
}

// Every process reloads the signing keys on its own, so that a key rotated elsewhere verifies (and
// signs) there too without a restart.
func TestKeyReloaderPicksUpARotatedKey(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)
	ctx := context.Background()
	replica, err := auth.NewTokens(ctx, auth.TokenConfig{}, f.d.System())
	if err != nil {
		t.Fatal(err)
	}
	reloader := auth.NewKeyReloader(replica, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tick, reloaded := reloader.ReloadByHand()
	if err := reloader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer reloader.Stop()

	kid, err := auth.RotateSigningKey(ctx, f.d.System())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.tokens.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := f.tokens.Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: f.tenant})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Verify(fresh); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("replica before its reload: %v, want ErrInvalidToken", err)
	}
	tick <- time.Now()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no reload within 30 s of the tick")
	}
	if _, err := replica.Verify(fresh); err != nil {
		t.Errorf("replica after its reload: %v", err)
	}
	signed, _, err := replica.Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: f.tenant})
	if err != nil || headerOf(t, signed)["kid"] != kid {
		t.Errorf("replica signs with %v (%v), want the rotated key %s", headerOf(t, signed)["kid"], err, kid)
	}
}

func TestRetiredKeyStopsVerifying(t *testing.T) {
	t.Parallel()
	f := setupTokens(t)
	ctx := context.Background()
	q := dbsqlc.New(f.d.Pool)
	claims := auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: f.tenant}
	old, _, err := f.tokens.Issue(claims)
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := auth.RotateSigningKey(ctx, f.d.System())
	if err != nil {
		t.Fatal(err)
	}

	retire := func(kid string, at time.Time) {
		t.Helper()
		if n, err := q.SigningKeyRetire(ctx, dbsqlc.SigningKeyRetireParams{Kid: kid, RetiredAt: &at}); err != nil || n != 1 {
			t.Fatalf("retire %s: %d rows, %v", kid, n, err)
		}
		if err := f.tokens.Reload(ctx); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}

	// Retiring later keeps the key verifying until then.
	retire(f.kid, time.Now().Add(time.Hour))
	if _, err := f.tokens.Verify(old); err != nil {
		t.Errorf("key retiring in an hour: %v", err)
	}

	retire(f.kid, time.Now().Add(-time.Second))
	if _, err := f.tokens.Verify(old); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of a retired key: err = %v, want ErrInvalidToken", err)
	}
	fresh, _, err := f.tokens.Issue(claims)
	if err != nil {
		t.Fatal(err)
	}
	if got := headerOf(t, fresh)["kid"]; got != newKid {
		t.Errorf("kid after retirement = %v, want %s", got, newKid)
	}
	if _, err := f.tokens.Verify(fresh); err != nil {
		t.Errorf("token of the remaining key: %v", err)
	}

	// With every key retired, Reload makes a fresh one rather than leave the service unable to sign.
	retire(newKid, time.Now().Add(-time.Second))
	if _, err := f.tokens.Verify(fresh); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of the second retired key: err = %v, want ErrInvalidToken", err)
	}
	last, _, err := f.tokens.Issue(claims)
	if err != nil {
		t.Fatalf("Issue with every earlier key retired: %v", err)
	}
	if kid := headerOf(t, last)["kid"]; kid == f.kid || kid == newKid {
		t.Errorf("signed with retired key %v", kid)
	}
}

func TestNewTokensConcurrentStartCreatesOneKey(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()

	const replicas = 8
	all := make([]*auth.Tokens, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			all[i], errs[i] = auth.NewTokens(ctx, auth.TokenConfig{}, d.System())
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: NewTokens: %v", i, err)
		}
	}

	rows, err := dbsqlc.New(d.Pool).SigningKeyListUsable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d signing keys after %d replicas started together, want 1", len(rows), replicas)
	}
	if len(rows[0].PrivateKey) != ed25519.SeedSize {
		t.Errorf("stored key is %d bytes, want an Ed25519 seed of %d", len(rows[0].PrivateKey), ed25519.SeedSize)
	}
	// Every replica signs with that key, and each accepts the others' tokens.
	token, _, err := all[0].Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	if kid := headerOf(t, token)["kid"]; kid != rows[0].Kid {
		t.Errorf("kid = %v, want %s", kid, rows[0].Kid)
	}
	for i, replica := range all {
		if _, err := replica.Verify(token); err != nil {
			t.Errorf("replica %d: Verify: %v", i, err)
		}
	}
}

// FuzzVerify checks that no input makes Verify panic, that every refusal is ErrInvalidToken, and that
// nothing but the exact token Issue produced is accepted.
func FuzzVerify(f *testing.F) {
	d := dbtest.New(f, db.FlavorPostgres)
	tokens, err := auth.NewTokens(context.Background(), auth.TokenConfig{}, d.System())
	if err != nil {
		f.Fatal(err)
	}
	valid, _, err := tokens.Issue(auth.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1"}, Tenant: uuid.New()})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	for _, seed := range []string{valid, "", "a.b", "a.b.c", parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2] + "=", strings.ToUpper(valid)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := tokens.Verify(token)
		switch {
		case err != nil && !errors.Is(err, auth.ErrInvalidToken):
			t.Fatalf("Verify error %v is not ErrInvalidToken", err)
		case err == nil && token != valid:
			t.Fatalf("Verify accepted %q (claims %+v), which Issue never produced", token, claims)
		}
	})
}

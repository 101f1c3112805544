package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Defaults of TokenConfig, applied where a field is zero.
const (
	DefaultIssuer    = "infrawatch"
	DefaultAudience  = "infrawatch-api"
	DefaultAccessTTL = 15 * time.Minute
	DefaultLeeway    = 30 * time.Second
)

const (
	// accessTokenType is the typ header of an access token (RFC 9068). Requiring it keeps any other JWT
	// signed with the same keys (an ID token, a future invitation link) from passing as an access token.
	accessTokenType = "at+jwt"
	// maxTokenLen bounds the work an unauthenticated caller can make Verify do: our tokens are a few
	// hundred bytes, so anything past this is refused before any decoding.
	maxTokenLen = 8 << 10
	// maxKidLen bounds the kid header; our kids are 16 hex characters.
	maxKidLen = 64
	// signingKeyLockKey identifies the advisory lock ("iwkeys" in ASCII) that serializes creating the
	// first signing key across replicas.
	signingKeyLockKey int64 = 0x6977_6b65_7973
)

// TokenConfig says how access tokens are issued and checked.
type TokenConfig struct {
	// Issuer is the iss claim written and required. Zero means "infrawatch".
	Issuer string
	// Audience is the aud claim written and required. Zero means "infrawatch-api".
	Audience string
	// AccessTTL is how long an access token lives. Zero means 15 minutes.
	AccessTTL time.Duration
	// Leeway tolerates clock skew on exp, nbf and iat. Zero means 30 seconds.
	Leeway time.Duration
}

// withDefaults returns c with every zero field set to its documented default.
func (c TokenConfig) withDefaults() TokenConfig {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	return c
}

// Validate reports a configuration that could only issue tokens nobody can use.
func (c TokenConfig) Validate() error {
	switch {
	case c.AccessTTL < 0:
		return fmt.Errorf("token config: access TTL %s is negative", c.AccessTTL)
	case c.Leeway < 0:
		return fmt.Errorf("token config: leeway %s is negative", c.Leeway)
	}
	return nil
}

// AccessClaims are the claims of an access token.
type AccessClaims struct {
	jwt.RegisteredClaims
	// Tenant is the tenant the token acts in.
	Tenant uuid.UUID `json:"tenant"`
	// Role is the membership role of a user token (owner, admin, editor, viewer); empty for clients.
	Role string `json:"role,omitempty"`
	// Scope lists an OAuth client's scopes, space-separated; empty for users.
	Scope string `json:"scope,omitempty"`
}

// ErrInvalidToken is returned for every token that fails verification, whatever the reason.
var ErrInvalidToken = errors.New("invalid token")

// signingKey is one usable row of infrawatch.signing_keys, decoded once at load time.
type signingKey struct {
	kid     string
	private ed25519.PrivateKey
	public  ed25519.PublicKey
	// retiredAt, when set, is the moment the key stops verifying, honoured even before the next Reload.
	retiredAt *time.Time
}

// usable reports whether the key still verifies at now.
func (k signingKey) usable(now time.Time) bool {
	return k.retiredAt == nil || now.Before(*k.retiredAt)
}

// Tokens issues and verifies access tokens signed with the keys in infrawatch.signing_keys.
//
// Verification only ever consults the keys held in memory: the token's kid selects one of them and
// nothing else in the header (jku, x5u, jwk) is looked at, so a token can never make the process read a
// file, query the database or dial out. Keys change only through NewTokens and Reload.
type Tokens struct {
	cfg    TokenConfig
	sys    *db.System
	parser *jwt.Parser

	mu     sync.RWMutex
	keys   map[string]signingKey // kid → key; every key that verifies
	signer signingKey            // the newest usable key
}

// NewTokens loads the signing keys, creating the first key when there is none.
func NewTokens(ctx context.Context, cfg TokenConfig, sys *db.System) (*Tokens, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tokens{
		cfg: cfg,
		sys: sys,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithNotBeforeRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithStrictDecoding(),
		),
	}
	if err := t.Reload(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload re-reads the usable signing keys, so that a key another replica created or rotated in starts
// verifying, and a retired one stops, without a restart. When no key is usable any more (all retired) it
// creates one, as NewTokens does.
func (t *Tokens) Reload(ctx context.Context) error {
	rows, err := t.sys.Queries().SigningKeyListUsable(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	if len(rows) == 0 {
		if rows, err = createFirstSigningKey(ctx, t.sys); err != nil {
			return err
		}
	}
	keys := make(map[string]signingKey, len(rows))
	var signer signingKey
	for i, row := range rows {
		if len(row.PrivateKey) != ed25519.SeedSize {
			return fmt.Errorf("load signing key %q: seed is %d bytes, want %d", row.Kid, len(row.PrivateKey), ed25519.SeedSize)
		}
		private := ed25519.NewKeyFromSeed(row.PrivateKey)
		k := signingKey{kid: row.Kid, private: private, public: private.Public().(ed25519.PublicKey), retiredAt: row.RetiredAt}
		keys[k.kid] = k
		if i == 0 { // rows come newest first
			signer = k
		}
	}
	t.mu.Lock()
	t.keys, t.signer = keys, signer
	t.mu.Unlock()
	return nil
}

// createFirstSigningKey creates a key when the table has no usable one and returns the usable keys. The
// advisory lock and the second look under it make replicas that start together agree on one key.
func createFirstSigningKey(ctx context.Context, sys *db.System) ([]dbsqlc.SigningKeyListUsableRow, error) {
	var rows []dbsqlc.SigningKeyListUsableRow
	err := sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		if err := q.SigningKeyLock(ctx, signingKeyLockKey); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		var err error
		if rows, err = q.SigningKeyListUsable(ctx); err != nil {
			return fmt.Errorf("list: %w", err)
		}
		if len(rows) > 0 {
			return nil
		}
		if _, err := insertSigningKey(ctx, q); err != nil {
			return err
		}
		if rows, err = q.SigningKeyListUsable(ctx); err != nil {
			return fmt.Errorf("list: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create first signing key: %w", err)
	}
	return rows, nil
}

// RotateSigningKey adds a new signing key, which signs from the next Reload on in every replica. The old
// keys keep verifying until they are retired, so rotation logs nobody out.
func RotateSigningKey(ctx context.Context, sys *db.System) (kid string, err error) {
	kid, err = insertSigningKey(ctx, sys.Queries())
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	return kid, nil
}

// insertSigningKey generates a fresh Ed25519 key with a random kid and stores it.
func insertSigningKey(ctx context.Context, q *dbsqlc.Queries) (string, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("generate kid: %w", err)
	}
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate Ed25519 key: %w", err)
	}
	row, err := q.SigningKeyCreate(ctx, dbsqlc.SigningKeyCreateParams{Kid: hex.EncodeToString(id[:]), PrivateKey: private.Seed()})
	if err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	return row.Kid, nil
}

// Issue signs claims with the newest active key; it fills iss, aud, iat, nbf, exp and jti.
func (t *Tokens) Issue(claims AccessClaims) (token string, expiresIn time.Duration, err error) {
	if claims.Tenant == uuid.Nil {
		return "", 0, errors.New("issue access token: no tenant")
	}
	if claims.Subject == "" {
		return "", 0, errors.New("issue access token: no subject")
	}
	t.mu.RLock()
	signer := t.signer
	t.mu.RUnlock()
	if signer.private == nil {
		return "", 0, errors.New("issue access token: no usable signing key")
	}
	now := time.Now()
	claims.Issuer = t.cfg.Issuer
	claims.Audience = jwt.ClaimStrings{t.cfg.Audience}
	claims.IssuedAt = jwt.NewNumericDate(now)
	claims.NotBefore = jwt.NewNumericDate(now)
	claims.ExpiresAt = jwt.NewNumericDate(now.Add(t.cfg.AccessTTL))
	claims.ID = uuid.NewString()

	jt := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	jt.Header["kid"] = signer.kid
	jt.Header["typ"] = accessTokenType
	token, err = jt.SignedString(signer.private)
	if err != nil {
		return "", 0, fmt.Errorf("sign access token: %w", err)
	}
	return token, t.cfg.AccessTTL, nil
}

// Verify checks a token's signature, algorithm, header, issuer, audience and times.
func (t *Tokens) Verify(token string) (*AccessClaims, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidToken, len(token), maxTokenLen)
	}
	claims := &AccessClaims{}
	if _, err := t.parser.ParseWithClaims(token, claims, t.verificationKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	switch {
	case claims.IssuedAt == nil:
		return nil, fmt.Errorf("%w: no iat", ErrInvalidToken)
	case claims.Tenant == uuid.Nil:
		return nil, fmt.Errorf("%w: no tenant", ErrInvalidToken)
	case claims.Subject == "":
		return nil, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return claims, nil
}

// verificationKey is the keyfunc of Verify: it picks the public key by kid from memory and refuses
// everything else about the header that is not exactly what Issue writes. Attacker-controlled header
// values are kept out of the error messages.
func (t *Tokens) verificationKey(token *jwt.Token) (any, error) {
	if _, ok := token.Method.(*jwt.SigningMethodEd25519); !ok {
		return nil, errors.New("signing method is not EdDSA")
	}
	if typ, _ := token.Header["typ"].(string); typ != accessTokenType {
		return nil, errors.New("typ header is not " + accessTokenType)
	}
	kid, ok := token.Header["kid"].(string)
	if !ok || kid == "" || len(kid) > maxKidLen {
		return nil, errors.New("kid header missing or malformed")
	}
	t.mu.RLock()
	key, ok := t.keys[kid]
	t.mu.RUnlock()
	if !ok || !key.usable(time.Now()) {
		return nil, errors.New("kid is not a usable signing key")
	}
	return key.public, nil
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Errors the API turns into status codes.
var (
	// ErrUnauthenticated: no credential, or one that is wrong, expired, revoked or reused (401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrSuspended: the credential is fine but its tenant is suspended (403).
	ErrSuspended = errors.New("tenant suspended")
	// ErrTenantChoice: the user belongs to several tenants and did not say which (400).
	ErrTenantChoice = errors.New("member of several tenants: give tenant_id")
	// ErrScope: a client asked for a scope it does not have (400, invalid_scope).
	ErrScope = errors.New("requested scope exceeds the client's scopes")
)

// RefreshTTL is how long a refresh token lives (each use rotates it).
const RefreshTTL = 30 * 24 * time.Hour

// InviteTTL is how long an invitation can be accepted.
const InviteTTL = 7 * 24 * time.Hour

// Service authenticates callers and issues tokens. Everything it does is system work — a credential
// must be checked before any tenant is known — so it exposes narrow operations and never its runner.
type Service struct {
	sys    *db.System
	tokens *Tokens
	// dummyHash is verified against when an email is unknown, so a login takes as long for unknown users.
	dummyHash string
}

// NewService returns the authentication service.
func NewService(sys *db.System, tokens *Tokens) (*Service, error) {
	h, err := HashPassword("not a real password, only for timing")
	if err != nil {
		return nil, err
	}
	return &Service{sys: sys, tokens: tokens, dummyHash: h}, nil
}

// TokenPair is what login and refresh return.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
}

// Authenticate turns the credential of an Authorization header (without "Bearer ") into a principal.
// API keys and client tokens are checked against the database at every request, so revocation is
// immediate; so is a user's role, so a demotion or a disabled membership takes effect at once.
func (s *Service) Authenticate(ctx context.Context, credential string) (Principal, error) {
	q := s.sys.Queries()
	if strings.HasPrefix(credential, apiKeyPrefix) {
		prefix, secret, ok := splitAPIKey(credential)
		if !ok {
			return Principal{}, ErrUnauthenticated
		}
		k, err := q.APIKeyAuthenticate(ctx, prefix)
		if errors.Is(err, db.ErrNotFound) {
			return Principal{}, ErrUnauthenticated
		} else if err != nil {
			return Principal{}, fmt.Errorf("authenticate API key: %w", err)
		}
		now := time.Now()
		if !secretMatches(secret, k.SecretHash) || k.RevokedAt != nil || (k.ExpiresAt != nil && now.After(*k.ExpiresAt)) {
			return Principal{}, ErrUnauthenticated
		}
		if k.TenantStatus != "active" {
			return Principal{}, ErrSuspended
		}
		p := Principal{TenantID: k.TenantID, Kind: ActorAPIKey, KeyID: k.ID, Scopes: k.Scopes,
			Caps: tenantCaps(k.TenantMaxStreams, k.TenantMaxHeavyReads)}
		if k.ExpiresAt != nil {
			p.ExpiresAt = *k.ExpiresAt
		}
		return p, nil
	}

	claims, err := s.tokens.Verify(credential)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	kind, id, _ := strings.Cut(claims.Subject, ":")
	switch kind {
	case "user":
		userID, err := uuid.Parse(id)
		if err != nil {
			return Principal{}, ErrUnauthenticated
		}
		return s.member(ctx, claims.Tenant, userID, claims.ExpiresAt.Time)
	case "client":
		c, err := q.OAuthClientAuthenticate(ctx, id)
		if errors.Is(err, db.ErrNotFound) {
			return Principal{}, ErrUnauthenticated
		} else if err != nil {
			return Principal{}, fmt.Errorf("authenticate client: %w", err)
		}
		if c.RevokedAt != nil || c.TenantID != claims.Tenant {
			return Principal{}, ErrUnauthenticated
		}
		if c.TenantStatus != "active" {
			return Principal{}, ErrSuspended
		}
		// The token's scopes, narrowed to what the client still has.
		var scopes []string
		for _, sc := range strings.Fields(claims.Scope) {
			if slices.Contains(c.Scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
		return Principal{TenantID: c.TenantID, Kind: ActorOAuthClient, KeyID: c.ID, Scopes: scopes, ExpiresAt: claims.ExpiresAt.Time,
			Caps: tenantCaps(c.TenantMaxStreams, c.TenantMaxHeavyReads)}, nil
	}
	return Principal{}, ErrUnauthenticated
}

// member is the principal of a user in a tenant, read from the database: its current role, or
// ErrUnauthenticated when the membership or the user is gone or disabled, ErrSuspended when the tenant is.
func (s *Service) member(ctx context.Context, tenantID, userID uuid.UUID, expiresAt time.Time) (Principal, error) {
	m, err := s.sys.Queries().MembershipAuthenticate(ctx, dbsqlc.MembershipAuthenticateParams{TenantID: tenantID, UserID: userID})
	if errors.Is(err, db.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	} else if err != nil {
		return Principal{}, fmt.Errorf("authenticate user: %w", err)
	}
	if m.MembershipDisabled || m.UserDisabled {
		return Principal{}, ErrUnauthenticated
	}
	if m.TenantStatus != "active" {
		return Principal{}, ErrSuspended
	}
	return Principal{TenantID: tenantID, Kind: ActorUser, UserID: userID, Role: m.Role, ExpiresAt: expiresAt,
		Caps: tenantCaps(m.TenantMaxStreams, m.TenantMaxHeavyReads)}, nil
}

// tenantCaps is the tenant's overrides of the server's per-process caps as read with the credential.
func tenantCaps(maxStreams, maxHeavyReads *int32) TenantCaps {
	var c TenantCaps
	if maxStreams != nil {
		c.MaxStreams = int(*maxStreams)
	}
	if maxHeavyReads != nil {
		c.MaxHeavyReads = int(*maxHeavyReads)
	}
	return c
}

// Login checks an email and password and issues a token pair for one of the user's tenants: tenantID
// when given, else the only tenant the user belongs to. A member of several who gives no tenantID gets a
// *TenantChoiceError (errors.Is ErrTenantChoice) listing them — only once the password is verified.
func (s *Service) Login(ctx context.Context, email, password string, tenantID *uuid.UUID) (TokenPair, error) {
	q := s.sys.Queries()
	user, err := q.UserGetByEmail(ctx, email)
	if errors.Is(err, db.ErrNotFound) || (err == nil && user.PasswordHash == nil) {
		_ = VerifyPassword(s.dummyHash, password)
		return TokenPair{}, ErrUnauthenticated
	} else if err != nil {
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	if err := VerifyPassword(*user.PasswordHash, password); err != nil || user.DisabledAt != nil {
		return TokenPair{}, ErrUnauthenticated
	}
	memberships, err := q.MembershipListByUser(ctx, user.ID)
	if err != nil {
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	var chosen *dbsqlc.AppMembership
	var active int
	for i, m := range memberships {
		if m.DisabledAt != nil {
			continue
		}
		active++
		if (tenantID != nil && m.TenantID == *tenantID) || (tenantID == nil && chosen == nil) {
			chosen = &memberships[i]
		}
	}
	switch {
	case tenantID == nil && active > 1:
		// The password is right: say which tenants there are, so a client offers a choice.
		tenants, err := s.tenantsOf(ctx, q, user.ID)
		if err != nil {
			return TokenPair{}, fmt.Errorf("login: %w", err)
		}
		return TokenPair{}, &TenantChoiceError{Tenants: tenants}
	case chosen == nil:
		return TokenPair{}, ErrUnauthenticated
	}
	t, err := q.TenantGetByID(ctx, chosen.TenantID)
	if err != nil {
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	if t.Status != "active" {
		return TokenPair{}, ErrSuspended
	}
	return s.issueUserPair(ctx, q, user.ID, chosen.TenantID, chosen.Role, uuid.New())
}

func (s *Service) issueUserPair(ctx context.Context, q *dbsqlc.Queries, userID, tenantID uuid.UUID, role string,
	family uuid.UUID) (TokenPair, error) {
	access, ttl, err := s.tokens.Issue(AccessClaims{Tenant: tenantID, Role: role,
		RegisteredClaims: jwtSubject("user:" + userID.String())})
	if err != nil {
		return TokenPair{}, err
	}
	refresh, hash, err := newOpaqueToken(refreshTokenPrefix)
	if err != nil {
		return TokenPair{}, err
	}
	uid := userID
	if _, err := q.RefreshTokenCreate(ctx, dbsqlc.RefreshTokenCreateParams{TenantID: tenantID, FamilyID: family,
		UserID: &uid, TokenHash: hash, Scopes: []string{}, ExpiresAt: time.Now().Add(RefreshTTL)}); err != nil {
		return TokenPair{}, fmt.Errorf("store refresh token: %w", err)
	}
	return TokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(ttl.Seconds())}, nil
}

// Refresh rotates a refresh token: the presented one is spent and a new pair is issued in the same
// family. A spent token presented again means it was stolen: the whole family is revoked, so whoever
// holds the newer token is logged out too.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	if !strings.HasPrefix(refreshToken, refreshTokenPrefix) || len(refreshToken) > 200 {
		return TokenPair{}, ErrUnauthenticated
	}
	var pair TokenPair
	var reused bool
	err := s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		rt, err := q.RefreshTokenGetForUpdate(ctx, HashSecret(refreshToken))
		if errors.Is(err, db.ErrNotFound) {
			return ErrUnauthenticated
		} else if err != nil {
			return err
		}
		switch {
		case rt.RevokedAt != nil || time.Now().After(rt.ExpiresAt):
			return ErrUnauthenticated
		case rt.UsedAt != nil:
			reused = true
			if _, err := q.RefreshTokenRevokeFamily(ctx, rt.FamilyID); err != nil {
				return err
			}
			return nil // commit the revocation, then answer 401
		case rt.UserID == nil:
			return ErrUnauthenticated
		}
		m, err := q.MembershipAuthenticate(ctx, dbsqlc.MembershipAuthenticateParams{TenantID: rt.TenantID, UserID: *rt.UserID})
		if errors.Is(err, db.ErrNotFound) || (err == nil && (m.MembershipDisabled || m.UserDisabled)) {
			return ErrUnauthenticated
		} else if err != nil {
			return err
		}
		if m.TenantStatus != "active" {
			return ErrSuspended
		}
		if err := q.RefreshTokenMarkUsed(ctx, rt.ID); err != nil {
			return err
		}
		pair, err = s.issueUserPair(ctx, q, *rt.UserID, rt.TenantID, m.Role, rt.FamilyID)
		return err
	})
	if err == nil && reused {
		return TokenPair{}, ErrUnauthenticated
	}
	if err != nil && !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrSuspended) {
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}
	return pair, err
}

// Logout revokes the refresh token's family. An unknown token is not an error: the caller is out either way.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	q := s.sys.Queries()
	rt, err := q.RefreshTokenGetForUpdate(ctx, HashSecret(refreshToken))
	if errors.Is(err, db.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	_, err = q.RefreshTokenRevokeFamily(ctx, rt.FamilyID)
	return err
}

// ChangePassword sets a user's new password after checking the old one, and revokes all their refresh
// tokens, so every other session ends when its access token expires.
func (s *Service) ChangePassword(ctx context.Context, userID uuid.UUID, oldPassword, newPassword string) error {
	return s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		user, err := q.UserGetByID(ctx, userID)
		if err != nil {
			return fmt.Errorf("change password: %w", err)
		}
		if user.PasswordHash == nil || VerifyPassword(*user.PasswordHash, oldPassword) != nil {
			return ErrUnauthenticated
		}
		if err := CheckPassword(newPassword, user.Email); err != nil {
			return err
		}
		hash, err := HashPassword(newPassword)
		if err != nil {
			return err
		}
		if err := q.UserSetPassword(ctx, dbsqlc.UserSetPasswordParams{ID: userID, PasswordHash: &hash}); err != nil {
			return err
		}
		_, err = q.RefreshTokenRevokeForUser(ctx, userID)
		return err
	})
}

// ClientCredentials implements the OAuth2 client credentials grant: an access token carrying the
// requested scopes (all of the client's when none are requested). No refresh token, as RFC 6749 advises.
func (s *Service) ClientCredentials(ctx context.Context, clientID, secret string, requested []string) (TokenPair, error) {
	c, err := s.sys.Queries().OAuthClientAuthenticate(ctx, clientID)
	if errors.Is(err, db.ErrNotFound) {
		secretMatches(secret, make([]byte, 32))
		return TokenPair{}, ErrUnauthenticated
	} else if err != nil {
		return TokenPair{}, fmt.Errorf("client credentials: %w", err)
	}
	if !secretMatches(secret, c.SecretHash) || c.RevokedAt != nil {
		return TokenPair{}, ErrUnauthenticated
	}
	if c.TenantStatus != "active" {
		return TokenPair{}, ErrSuspended
	}
	scopes := c.Scopes
	if len(requested) > 0 {
		for _, r := range requested {
			if !slices.Contains(c.Scopes, r) {
				return TokenPair{}, ErrScope
			}
		}
		scopes = requested
	}
	scope := strings.Join(scopes, " ")
	access, ttl, err := s.tokens.Issue(AccessClaims{Tenant: c.TenantID, Scope: scope,
		RegisteredClaims: jwtSubject("client:" + c.ClientID)})
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(ttl.Seconds()), Scope: scope}, nil
}

func jwtSubject(sub string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: sub} }

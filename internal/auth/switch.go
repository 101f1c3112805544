package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// ErrNotMember: the user has no enabled membership in the tenant asked for (404, so whether the tenant
// exists is never revealed).
var ErrNotMember = errors.New("not a member of that tenant")

// TenantMembership is one tenant a user may open, with the user's role in it.
type TenantMembership struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
	Name string    `json:"name"`
	Role string    `json:"role"`
	// Current is whether this is the tenant of the caller's credential (in GET /auth/tenants only).
	Current *bool `json:"current,omitempty"`
}

// TenantChoiceError is ErrTenantChoice with the tenants to choose from. Login returns it only after
// the password is verified, so the list never answers a guess.
type TenantChoiceError struct {
	Tenants []TenantMembership
}

func (e *TenantChoiceError) Error() string { return ErrTenantChoice.Error() }

// Unwrap makes errors.Is(err, ErrTenantChoice) true.
func (e *TenantChoiceError) Unwrap() error { return ErrTenantChoice }

// Tenants lists the tenants a user may open — enabled memberships of active tenants — by slug, marking
// current (the tenant of the caller's token) as such.
func (s *Service) Tenants(ctx context.Context, userID, current uuid.UUID) ([]TenantMembership, error) {
	list, err := s.tenantsOf(ctx, s.sys.Queries(), userID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		isCurrent := list[i].ID == current
		list[i].Current = &isCurrent
	}
	return list, nil
}

func (s *Service) tenantsOf(ctx context.Context, q *dbsqlc.Queries, userID uuid.UUID) ([]TenantMembership, error) {
	rows, err := q.MembershipListTenantsByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list the user's tenants: %w", err)
	}
	list := make([]TenantMembership, 0, len(rows))
	for _, r := range rows {
		list = append(list, TenantMembership{ID: r.ID, Slug: r.Slug, Name: r.Name, Role: r.Role})
	}
	return list, nil
}

// Switch issues a user a token pair for another tenant they are an enabled member of, with their role
// there, in a new refresh family: the session it comes from is left as it is (the caller logs it out
// if it is done with it, as the console does). ErrNotMember when there is no such membership (or the
// tenant does not exist), ErrSuspended when the tenant is suspended, ErrUnauthenticated when the user
// is disabled.
func (s *Service) Switch(ctx context.Context, userID, tenantID uuid.UUID) (TokenPair, error) {
	q := s.sys.Queries()
	m, err := q.MembershipAuthenticate(ctx, dbsqlc.MembershipAuthenticateParams{TenantID: tenantID, UserID: userID})
	switch {
	case errors.Is(err, db.ErrNotFound):
		return TokenPair{}, ErrNotMember
	case err != nil:
		return TokenPair{}, fmt.Errorf("switch tenant: %w", err)
	case m.UserDisabled:
		return TokenPair{}, ErrUnauthenticated
	case m.MembershipDisabled:
		return TokenPair{}, ErrNotMember
	case m.TenantStatus != "active":
		return TokenPair{}, ErrSuspended
	}
	return s.issueUserPair(ctx, q, userID, tenantID, m.Role, uuid.New())
}

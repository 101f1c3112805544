package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Accounts are global and belong to the person who holds their password. A tenant admin adds people
// only by invitation: an invitation is bound to a tenant and an email, never to an account, and it
// never creates, changes or reveals an account. The person invited accepts it by creating the account
// (when the email has none) or by proving they own the account (its password, or being logged in as
// it). README § Security model states the model and its residual risk.

// Errors of invitations, which the API turns into status codes.
var (
	// ErrRoleGrant: the principal may not hand out the role, since it lacks some of its permissions (403).
	ErrRoleGrant = errors.New("the role grants more than this credential holds")
	// ErrAlreadyMember: the email is already a member of the tenant (409).
	ErrAlreadyMember = errors.New("already a member of this tenant")
)

// NewInvitation describes a person a tenant invites.
type NewInvitation struct {
	Email, Role string
	// Name is suggested for the account, if accepting creates one; an existing account keeps its own.
	Name string
}

// Invite creates a pending invitation into the principal's tenant and returns it with its token, which
// is in the clear only here, to be shown once. An earlier live invitation of the same email in the
// tenant is revoked, so only the newest token works. q must run as the tenant (db.TenantRunner): the
// answer is the same whether or not the email has an account in another tenant.
func Invite(ctx context.Context, q *dbsqlc.Queries, by Principal, in NewInvitation) (dbsqlc.AppInvitation, string, error) {
	if !by.CanGrantRole(in.Role) {
		return dbsqlc.AppInvitation{}, "", ErrRoleGrant
	}
	member, err := q.MembershipExistsByEmail(ctx, in.Email)
	if err != nil {
		return dbsqlc.AppInvitation{}, "", fmt.Errorf("invite: %w", err)
	}
	if member {
		return dbsqlc.AppInvitation{}, "", ErrAlreadyMember
	}
	if _, err := q.InvitationRevokePending(ctx, in.Email); err != nil {
		return dbsqlc.AppInvitation{}, "", fmt.Errorf("invite: revoke the earlier invitation: %w", err)
	}
	token, hash, err := NewInviteToken()
	if err != nil {
		return dbsqlc.AppInvitation{}, "", err
	}
	inv, err := q.InvitationCreate(ctx, dbsqlc.InvitationCreateParams{Email: in.Email, Role: in.Role, Name: in.Name,
		TokenHash: hash, CreatedBy: by.CreatedBy(), ExpiresAt: time.Now().Add(InviteTTL)})
	if err != nil {
		return dbsqlc.AppInvitation{}, "", fmt.Errorf("invite: %w", err)
	}
	return inv, token, nil
}

// InvitationStatus is what became of an invitation: pending, accepted, revoked or expired.
func InvitationStatus(inv dbsqlc.AppInvitation, now time.Time) string {
	switch {
	case inv.AcceptedAt != nil:
		return "accepted"
	case inv.RevokedAt != nil:
		return "revoked"
	case now.After(inv.ExpiresAt):
		return "expired"
	}
	return "pending"
}

// Acceptance is a person accepting an invitation.
type Acceptance struct {
	Token string
	// AsUser is the logged-in user accepting for their own account; the invitation must be for its
	// email. Nil: Password proves the person owns the email's account, or becomes the new account's.
	AsUser   *uuid.UUID
	Password string
	// Name of a new account; empty takes the name the invitation suggests.
	Name string
}

// Accepted says which tenant the person joined, as whom.
type Accepted struct {
	TenantID uuid.UUID `json:"tenant_id"`
	UserID   uuid.UUID `json:"user_id"`
	Email    string    `json:"email"`
	Role     string    `json:"role"`
}

// AcceptInvite spends an invitation and makes the membership it offers, in one transaction with an
// audit entry in the invitation's tenant. An unknown, spent, revoked or expired token, a wrong password
// or a logged-in user of another email are all ErrUnauthenticated, alike. An existing account's
// password is never changed; without an account for the email, one is created with Password.
func (s *Service) AcceptInvite(ctx context.Context, a Acceptance) (Accepted, error) {
	if !strings.HasPrefix(a.Token, inviteTokenPrefix) || len(a.Token) > 200 {
		return Accepted{}, ErrUnauthenticated
	}
	var out Accepted
	err := s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		inv, err := q.InvitationGetForUpdate(ctx, HashSecret(a.Token))
		if errors.Is(err, db.ErrNotFound) {
			return ErrUnauthenticated
		} else if err != nil {
			return err
		}
		if InvitationStatus(inv, time.Now()) != "pending" {
			return ErrUnauthenticated
		}
		// The policy applies to every password given here, an existing account's too, so that its answer
		// never tells whether the email has an account.
		if a.AsUser == nil {
			if err := CheckPassword(a.Password, inv.Email); err != nil {
				return err
			}
		}
		t, err := q.TenantGetByID(ctx, inv.TenantID)
		if err != nil {
			return err
		}
		if t.Status != "active" {
			return ErrSuspended
		}
		user, err := s.invitee(ctx, q, inv, a)
		if err != nil {
			return err
		}
		if _, err := q.MembershipCreate(ctx, dbsqlc.MembershipCreateParams{TenantID: inv.TenantID, UserID: user.ID,
			Role: inv.Role}); err != nil {
			if errors.Is(err, db.ErrConflict) {
				return ErrAlreadyMember
			}
			return err
		}
		if err := q.InvitationAccept(ctx, inv.ID); err != nil {
			return err
		}
		details, err := json.Marshal(map[string]any{"invitation_id": inv.ID, "email": inv.Email, "role": inv.Role})
		if err != nil {
			return err
		}
		if err := q.AuditLogInsert(ctx, dbsqlc.AuditLogInsertParams{TenantID: inv.TenantID, ActorKind: string(ActorUser),
			ActorID: user.ID.String(), Action: "invitation.accept", ObjectKind: "user", ObjectID: user.ID.String(),
			Details: details}); err != nil {
			return err
		}
		out = Accepted{TenantID: inv.TenantID, UserID: user.ID, Email: user.Email, Role: inv.Role}
		return nil
	})
	if err != nil && !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrSuspended) && !errors.Is(err, ErrAlreadyMember) &&
		!errors.Is(err, ErrWeakPassword) {
		return Accepted{}, fmt.Errorf("accept invitation: %w", err)
	}
	return out, err
}

// invitee is the account that accepts inv: the logged-in user, the existing account whose password was
// given, or a new account with that password.
func (s *Service) invitee(ctx context.Context, q *dbsqlc.Queries, inv dbsqlc.AppInvitation, a Acceptance) (dbsqlc.AppUser, error) {
	if a.AsUser != nil {
		user, err := q.UserGetByID(ctx, *a.AsUser)
		if err != nil || user.DisabledAt != nil || !strings.EqualFold(user.Email, inv.Email) {
			return dbsqlc.AppUser{}, ErrUnauthenticated
		}
		return user, nil
	}
	user, err := q.UserGetByEmail(ctx, inv.Email)
	switch {
	case errors.Is(err, db.ErrNotFound):
		hash, err := HashPassword(a.Password)
		if err != nil {
			return dbsqlc.AppUser{}, err
		}
		name := a.Name
		if name == "" {
			name = inv.Name
		}
		return q.UserCreate(ctx, dbsqlc.UserCreateParams{Email: inv.Email, Name: name, PasswordHash: hash})
	case err != nil:
		return dbsqlc.AppUser{}, err
	}
	// The password proves the person owns the account; it is never changed here.
	if user.PasswordHash == nil || VerifyPassword(*user.PasswordHash, a.Password) != nil || user.DisabledAt != nil {
		return dbsqlc.AppUser{}, ErrUnauthenticated
	}
	return user, nil
}

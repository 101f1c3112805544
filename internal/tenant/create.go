// Package tenant manages the life of tenants: creating one with its first owner, suspending, resuming and
// deleting with all its data. It is system work that runs as the owning login, never on
// behalf of a tenant, so it must never be reachable from a tenant's request handler.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// NewTenant describes a tenant to create and its first user, who becomes its owner.
type NewTenant struct {
	Name          string
	Slug          string // empty: derived from Name
	AdminEmail    string
	AdminPassword string // empty: a random one is generated and returned
}

// Created is what Create made. AdminPassword is in the clear only here, to be shown once.
type Created struct {
	TenantID      uuid.UUID `json:"tenant_id"`
	Slug          string    `json:"slug"`
	AdminEmail    string    `json:"admin_email"`
	AdminPassword string    `json:"admin_password"`
}

var (
	notSlug   = regexp.MustCompile(`[^a-z0-9]+`)
	validSlug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// ErrInvalid marks a tenant that cannot be created as described; its message says why.
var ErrInvalid = errors.New("invalid tenant")

// Slugify turns a display name into a slug: lower case letters, digits and single hyphens.
func Slugify(name string) string {
	s := strings.Trim(notSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// Create makes the tenant, its owner user (or reuses the user with that email, who keeps their
// password) and the membership, in one transaction.
func Create(ctx context.Context, sys *db.System, nt NewTenant) (Created, error) {
	if nt.Slug == "" {
		nt.Slug = Slugify(nt.Name)
	}
	if strings.TrimSpace(nt.Name) == "" || nt.Slug == "" || len(nt.Name) > 200 {
		return Created{}, fmt.Errorf("create tenant: %w: a name of up to 200 characters, with a letter or digit, is required", ErrInvalid)
	}
	if !validSlug.MatchString(nt.Slug) {
		return Created{}, fmt.Errorf("create tenant: %w: slug %q must be lower-case letters, digits and hyphens, at most 63", ErrInvalid, nt.Slug)
	}
	if !strings.Contains(nt.AdminEmail, "@") {
		return Created{}, fmt.Errorf("create tenant: %w: admin email %q is not an email address", ErrInvalid, nt.AdminEmail)
	}
	if nt.AdminPassword != "" {
		if err := auth.CheckPassword(nt.AdminPassword, nt.AdminEmail); err != nil {
			return Created{}, fmt.Errorf("create tenant: %w: the admin password %v", ErrInvalid, err)
		}
	}
	out := Created{Slug: nt.Slug, AdminEmail: nt.AdminEmail}
	err := sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		t, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{Slug: nt.Slug, Name: nt.Name})
		if errors.Is(err, db.ErrConflict) {
			return fmt.Errorf("create tenant: the slug %q is taken: %w", nt.Slug, db.ErrConflict)
		} else if err != nil {
			return fmt.Errorf("create tenant: %w", err)
		}
		out.TenantID = t.ID

		user, err := q.UserGetByEmail(ctx, nt.AdminEmail)
		switch {
		case err == nil:
			out.AdminPassword = "" // an existing user keeps the password they have
		case errors.Is(err, db.ErrNotFound):
			password := nt.AdminPassword
			if password == "" {
				if password, err = auth.RandomSecret(18); err != nil {
					return err
				}
			}
			hash, err := auth.HashPassword(password)
			if err != nil {
				return err
			}
			user, err = q.UserCreate(ctx, dbsqlc.UserCreateParams{Email: nt.AdminEmail, Name: "", PasswordHash: hash})
			if err != nil {
				return fmt.Errorf("create admin user: %w", err)
			}
			out.AdminPassword = password
		default:
			return fmt.Errorf("look up admin user: %w", err)
		}
		if _, err := q.MembershipCreate(ctx, dbsqlc.MembershipCreateParams{TenantID: t.ID, UserID: user.ID, Role: "owner"}); err != nil {
			return fmt.Errorf("make %s owner: %w", nt.AdminEmail, err)
		}
		return nil
	})
	return out, err
}

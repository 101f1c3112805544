package bi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Errors Service answers besides the database's (db.ErrNotFound for a credential the tenant does not
// have, …).
var (
	// ErrNotConfigured: the server has no public address for BI tools (--bi-public-dsn), so it issues
	// no credentials.
	ErrNotConfigured = errors.New("BI access is off on this server: it has no --bi-public-dsn")
	// ErrTemporaryAllowed: every role of the database may create temporary tables, a BI login too, and
	// the owning login cannot take that away (it does not own the database). No login is made until the
	// database's owner runs REVOKE TEMPORARY ON DATABASE … FROM PUBLIC.
	ErrTemporaryAllowed = errors.New("the database lets every role create temporary tables and the owning login cannot revoke it; " +
		"as the database's owner, run REVOKE TEMPORARY ON DATABASE <name> FROM PUBLIC")
)

// TooManyError refuses a credential beyond the tenant's app.bi_settings.max_credentials.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("the tenant has %d BI credentials, the most it may have; revoke one first", e.Max)
}

// InvalidError names the input that cannot be taken, and why.
type InvalidError struct{ Field, Msg string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// MaxNameLength bounds a credential's name, in characters.
const MaxNameLength = 200

// Limits are the limits of a tenant's BI logins (app.bi_settings).
type Limits struct {
	// StatementTimeout is the longest a statement of the login runs.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout is the longest a session of the login stays idle in a transaction.
	IdleInTransactionTimeout time.Duration
	// ConnectionLimit is the most sessions the login holds at once.
	ConnectionLimit int
}

// Credential is a BI login as lists show it: never a password.
type Credential struct {
	ID   int64
	Name string
	// Login is the role's name, the user name BI tools log in with.
	Login     string
	CreatedBy *uuid.UUID
	CreatedAt time.Time
	RotatedAt *time.Time
	Limits    Limits
}

// Issued is a credential with its new password, answered once (creation and rotation), and where to
// connect.
type Issued struct {
	Credential
	Password string
	Endpoint Endpoint
}

// Actor is who acts, for the audit log: the API's principal.
type Actor struct {
	Kind   string     // user, api_key, oauth_client, …
	ID     string     // their id
	UserID *uuid.UUID // the user, for created_by; nil for other kinds
}

// Service issues, rotates and revokes BI logins: system work, through db.System and the SECURITY
// DEFINER functions of migration 000013, each call for the one tenant it is given.
type Service struct {
	sys      *db.System
	endpoint *Endpoint // nil: BI access is off
}

// NewService returns the BI credentials service. cfg.PublicDSN must be valid or empty (Config.Validate).
func NewService(cfg Config, sys *db.System) (*Service, error) {
	s := &Service{sys: sys}
	if cfg.PublicDSN != "" {
		ep, err := ParseEndpoint(cfg.PublicDSN)
		if err != nil {
			return nil, fmt.Errorf("--bi-public-dsn: %w", err)
		}
		s.endpoint = &ep
	}
	return s, nil
}

// Endpoint is where BI tools connect; false when BI access is off.
func (s *Service) Endpoint() (Endpoint, bool) {
	if s.endpoint == nil {
		return Endpoint{}, false
	}
	return *s.endpoint, true
}

// Create makes a BI login for tenant named name (what it is for: "grafana"), and answers it with its
// password, once. The login is mapped to the tenant, a member of infrawatch_bi only, with the tenant's
// limits (made with the defaults on its first login). Refused with ErrNotConfigured when BI access is
// off, *InvalidError for a bad name, *TooManyError past the tenant's maximum, db.ErrNotFound for a
// tenant that does not exist.
func (s *Service) Create(ctx context.Context, tenant uuid.UUID, name string, actor Actor) (Issued, error) {
	if s.endpoint == nil {
		return Issued{}, ErrNotConfigured
	}
	if err := validName(name); err != nil {
		return Issued{}, err
	}
	// A role name is the server's: one made meanwhile by another database of the server is a conflict,
	// and another random name settles it.
	for attempt := 0; ; attempt++ {
		issued, err := s.create(ctx, tenant, name, actor)
		if errors.Is(err, db.ErrConflict) && attempt < 3 {
			continue
		}
		return issued, err
	}
}

func (s *Service) create(ctx context.Context, tenant uuid.UUID, name string, actor Actor) (Issued, error) {
	login, password := newLogin(), newPassword()
	verifier, err := newVerifier(password)
	if err != nil {
		return Issued{}, err
	}
	var out Issued
	err = s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		denied, err := q.BiDenyTemporary(ctx)
		if err != nil {
			return fmt.Errorf("deny temporary tables to PUBLIC: %w", err)
		}
		if !denied {
			return ErrTemporaryAllowed
		}
		settings, err := q.BiSettingsEnsure(ctx, tenant)
		if err != nil {
			return fmt.Errorf("read the tenant's BI limits: %w", err)
		}
		count, err := q.BiCredentialCount(ctx, tenant)
		if err != nil {
			return fmt.Errorf("count the tenant's BI logins: %w", err)
		}
		if count >= int64(settings.MaxCredentials) {
			return &TooManyError{Max: int(settings.MaxCredentials)}
		}
		row, err := q.BiCredentialInsert(ctx, dbsqlc.BiCredentialInsertParams{TenantID: tenant, Name: name, Login: login,
			CreatedBy: actor.UserID})
		if err != nil {
			return fmt.Errorf("map the BI login: %w", err)
		}
		if err := q.BiLoginCreate(ctx, dbsqlc.BiLoginCreateParams{Login: login, Verifier: verifier}); err != nil {
			return fmt.Errorf("create the BI login: %w", err)
		}
		out = Issued{Credential: credential(row, settings), Password: password, Endpoint: *s.endpoint}
		return audit(ctx, q, tenant, actor, "bi_credential.create", row)
	})
	return out, err
}

// Rotate gives a tenant's BI login a new password, answered once, applies the tenant's current limits
// to it again and ends its sessions, so that nothing logged in with the old password stays.
// db.ErrNotFound when the tenant has no such credential.
func (s *Service) Rotate(ctx context.Context, tenant uuid.UUID, id int64, actor Actor) (Issued, error) {
	if s.endpoint == nil {
		return Issued{}, ErrNotConfigured
	}
	password := newPassword()
	verifier, err := newVerifier(password)
	if err != nil {
		return Issued{}, err
	}
	var out Issued
	err = s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		row, err := q.BiCredentialGetForTenant(ctx, dbsqlc.BiCredentialGetForTenantParams{TenantID: tenant, ID: id})
		if err != nil {
			return err
		}
		settings, err := q.BiSettingsEnsure(ctx, tenant)
		if err != nil {
			return fmt.Errorf("read the tenant's BI limits: %w", err)
		}
		if _, err := q.BiLoginSetPassword(ctx, dbsqlc.BiLoginSetPasswordParams{Login: row.Login, Verifier: verifier}); err != nil {
			return fmt.Errorf("set the BI login's password: %w", err)
		}
		if row, err = q.BiCredentialMarkRotated(ctx, dbsqlc.BiCredentialMarkRotatedParams{TenantID: tenant, ID: id}); err != nil {
			return err
		}
		out = Issued{Credential: credential(row, settings), Password: password, Endpoint: *s.endpoint}
		return audit(ctx, q, tenant, actor, "bi_credential.rotate", row)
	})
	return out, err
}

// Revoke drops a tenant's BI login: deleting its mapping ends its sessions and drops the role in the
// same transaction (migration 000013's trigger). It works with BI access off too. db.ErrNotFound when
// the tenant has no such credential.
func (s *Service) Revoke(ctx context.Context, tenant uuid.UUID, id int64, actor Actor) error {
	return s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		row, err := q.BiCredentialDelete(ctx, dbsqlc.BiCredentialDeleteParams{TenantID: tenant, ID: id})
		if err != nil {
			return err
		}
		return audit(ctx, q, tenant, actor, "bi_credential.revoke", row)
	})
}

// validName refuses a name the table would refuse, saying why.
func validName(name string) error {
	if n := utf8.RuneCountInString(name); strings.TrimSpace(name) == "" || n > MaxNameLength {
		return &InvalidError{Field: "name", Msg: fmt.Sprintf("must be 1 to %d characters, not only spaces", MaxNameLength)}
	}
	return nil
}

// newLogin is a fresh login name: bi_ and 16 characters of base32 (80 random bits), never anything of
// the tenant, since every login of the server can read the names of all roles.
func newLogin() string { return "bi_" + strings.ToLower(rand.Text()[:16]) }

// newPassword is a fresh password: 26 characters of base32, 130 random bits; no character needs
// escaping in a connection URL or a configuration file.
func newPassword() string { return rand.Text() }

func credential(row dbsqlc.AppBiCredential, s dbsqlc.AppBiSetting) Credential {
	return Credential{ID: row.ID, Name: row.Name, Login: row.Login, CreatedBy: row.CreatedBy, CreatedAt: row.CreatedAt,
		RotatedAt: row.RotatedAt, Limits: Limits{StatementTimeout: s.StatementTimeout,
			IdleInTransactionTimeout: s.IdleInTransactionTimeout, ConnectionLimit: int(s.ConnectionLimit)}}
}

// audit records a change of a credential in the tenant's audit log, in the transaction that makes it.
func audit(ctx context.Context, q *dbsqlc.Queries, tenant uuid.UUID, actor Actor, action string, row dbsqlc.AppBiCredential) error {
	details, err := json.Marshal(map[string]string{"name": row.Name, "login": row.Login})
	if err != nil {
		return err
	}
	return q.AuditLogInsert(ctx, dbsqlc.AuditLogInsertParams{TenantID: tenant, ActorKind: actor.Kind, ActorID: actor.ID,
		Action: action, ObjectKind: "bi_credential", ObjectID: strconv.FormatInt(row.ID, 10), Details: details})
}

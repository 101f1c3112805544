package auth

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// Permission is one thing a caller may do inside its tenant.
type Permission string

// The permissions, from least to most powerful. Each route requires exactly one.
const (
	PermRead      Permission = "read"      // read everything of the tenant
	PermIngest    Permission = "ingest"    // push metrics and logs
	PermInventory Permission = "inventory" // manage hosts and checks (later: alert rules)
	PermAccess    Permission = "access"    // manage users, API keys, OAuth clients, notification channels; read the audit and delivery logs
	PermTenant    Permission = "tenant"    // change the tenant's settings, delete the tenant
)

// Roles of a membership, with what each may do. The README's RBAC matrix is this table.
var rolePermissions = map[string][]Permission{
	"viewer": {PermRead},
	"editor": {PermRead, PermIngest, PermInventory},
	"admin":  {PermRead, PermIngest, PermInventory, PermAccess},
	"owner":  {PermRead, PermIngest, PermInventory, PermAccess, PermTenant},
}

// Scopes of API keys and OAuth clients, with what each grants.
var scopePermissions = map[string][]Permission{
	"ingest": {PermIngest},
	"read":   {PermRead},
	"write":  {PermRead, PermInventory},
	"admin":  {PermRead, PermInventory, PermAccess},
}

// Roles lists the membership roles, least powerful first.
var Roles = []string{"viewer", "editor", "admin", "owner"}

// Scopes lists the scopes an API key or OAuth client may carry.
var Scopes = []string{"ingest", "read", "write", "admin"}

// ActorKind says what kind of credential a principal presented.
type ActorKind string

// The kinds of actor.
const (
	ActorUser        ActorKind = "user"
	ActorAPIKey      ActorKind = "api_key"
	ActorOAuthClient ActorKind = "oauth_client"
)

// Principal is the authenticated caller of one request: always exactly one tenant.
type Principal struct {
	TenantID uuid.UUID
	Kind     ActorKind
	UserID   uuid.UUID // ActorUser
	KeyID    int64     // ActorAPIKey: app.api_keys.id; ActorOAuthClient: app.oauth_clients.id
	Role     string    // ActorUser: the membership role, read from the database at each request
	Scopes   []string  // ActorAPIKey, ActorOAuthClient
	// ExpiresAt is when the credential stops authenticating: an access token's exp, an API key's
	// expires_at; zero when it does not expire. Long-lived requests (the live stream) end there.
	ExpiresAt time.Time
	// Caps are the tenant's own values of caps the server's flags set per process, read with the
	// credential at every request, so that an operator's change applies at the next request.
	Caps TenantCaps
}

// TenantCaps are a tenant's overrides (app.tenants.max_streams, max_heavy_reads) of caps that hold per
// process; zero means the server's value.
type TenantCaps struct {
	MaxStreams    int // live streams open at once
	MaxHeavyReads int // heavy reads running at once
}

// Can reports whether the principal holds perm.
func (p Principal) Can(perm Permission) bool {
	if p.Kind == ActorUser {
		return slices.Contains(rolePermissions[p.Role], perm)
	}
	for _, s := range p.Scopes {
		if slices.Contains(scopePermissions[s], perm) {
			return true
		}
	}
	return false
}

// ActorID names the principal in the audit log.
func (p Principal) ActorID() string {
	switch p.Kind {
	case ActorUser:
		return p.UserID.String()
	default:
		return string(p.Kind) + ":" + itoa(p.KeyID)
	}
}

// CreatedBy is the user to record as creator of something, if the principal is a user.
func (p Principal) CreatedBy() *uuid.UUID {
	if p.Kind == ActorUser {
		id := p.UserID
		return &id
	}
	return nil
}

// CanGrant reports whether the principal may hand out a credential with scope: only if it holds every
// permission the scope grants, so no key or client can mint one more powerful than itself.
func (p Principal) CanGrant(scope string) bool {
	perms, ok := scopePermissions[scope]
	return ok && p.holdsAll(perms)
}

// CanGrantRole reports whether the principal may give a membership role (by invitation or by changing a
// member's role): only if it holds every permission of the role, so no credential makes a member more
// powerful than itself. An admin-scope API key, which lacks ingest, cannot make an editor.
func (p Principal) CanGrantRole(role string) bool {
	perms, ok := rolePermissions[role]
	return ok && p.holdsAll(perms)
}

func (p Principal) holdsAll(perms []Permission) bool {
	for _, perm := range perms {
		if !p.Can(perm) {
			return false
		}
	}
	return true
}

// RoleCan reports whether a membership role holds perm.
func RoleCan(role string, perm Permission) bool { return slices.Contains(rolePermissions[role], perm) }

// ValidRole reports whether role is a membership role.
func ValidRole(role string) bool { _, ok := rolePermissions[role]; return ok }

// ValidScope reports whether scope is an API key or client scope.
func ValidScope(scope string) bool { _, ok := scopePermissions[scope]; return ok }

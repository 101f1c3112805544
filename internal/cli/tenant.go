package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// runTenant creates a tenant and its owner and prints them as JSON, the password in the clear this once.
func runTenant(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "tenant", "tenant create --name NAME --admin-email EMAIL [--admin-password P] [--slug S]")
	dbConfig := db.DefaultConfig()
	dbConfig.AddURLFlag(fs)
	name := fs.String("name", "", "the tenant's display name (required)")
	slug := fs.String("slug", "", "the tenant's slug (default: derived from the name)")
	email := fs.String("admin-email", "", "email of the tenant's first owner (required)")
	password := fs.String("admin-password", "", "the owner's password (default: a generated one, printed once)")
	action, args := splitAction(args)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if action != "create" {
		fs.Usage()
		return errUsage
	}
	if err := dbConfig.Validate(); err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	created, err := tenant.Create(ctx, db.NewSystem(pool), tenant.NewTenant{Name: *name, Slug: *slug, AdminEmail: *email, AdminPassword: *password})
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(created, "", "  ")
	fmt.Fprintln(env.stdout, string(out))
	return nil
}

// runKeys rotates the access-token signing key: new tokens are signed with a new key, and tokens signed
// with older keys keep verifying until they expire.
func runKeys(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "keys", "keys rotate")
	dbConfig := db.DefaultConfig()
	dbConfig.AddURLFlag(fs)
	action, args := splitAction(args)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if action != "rotate" {
		fs.Usage()
		return errUsage
	}
	if err := dbConfig.Validate(); err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	kid, err := auth.RotateSigningKey(ctx, db.NewSystem(pool))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "new signing key %s; servers sign with it within a minute\n", kid)
	return nil
}

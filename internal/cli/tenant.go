package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// runTenant creates a tenant and its owner and prints them as JSON, the password in the clear this once;
// `tenant limits` reads and sets a tenant's limits (runTenantLimits).
func runTenant(ctx context.Context, env *environment, args []string) error {
	if action, rest := splitAction(args); action == "limits" {
		return runTenantLimits(ctx, env, rest)
	}
	fs := newFlagSet(env, "tenant", "tenant create --name NAME --admin-email EMAIL [--admin-password P] [--slug S]\n"+
		"       infrawatch tenant limits --tenant SLUG [--set key=value ...]  (see tenant limits --help)")
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

// runTenantLimits prints a tenant's limits and usage as JSON, after setting the limits of --set: the
// names, ranges and refusals are the operator API's (PATCH /api/v1/operator/tenants/{id}/limits). It is
// system work through the database, recorded in the tenant's audit log as the command line's.
func runTenantLimits(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "tenant limits", "tenant limits --tenant SLUG [--set key=value ...]")
	dbConfig := db.DefaultConfig()
	dbConfig.AddURLFlag(fs)
	slug := fs.String("tenant", "", "the tenant's slug (required)")
	var sets repeated
	var names strings.Builder
	for _, l := range tenant.LimitSpecs {
		null := ""
		if l.Nullable {
			null = " or null"
		}
		fmt.Fprintf(&names, "\n          %s (%d–%d%s): %s", l.Name, l.Min, l.Max, null, l.What)
	}
	fs.Var(&sets, "set", "a limit to set, key=value; repeat for several. The limits:"+names.String()+
		"\n        ingest applies a change within 30 s, max_checks at once, max_streams and max_heavy_reads at the next request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *slug == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	change, bad := tenant.ParseLimitsSet(sets)
	if len(bad) > 0 {
		msgs := make([]string, 0, len(bad))
		for _, e := range bad {
			msgs = append(msgs, "--set "+e.Field+": "+e.Message)
		}
		return fmt.Errorf("nothing set: %s", strings.Join(msgs, "; "))
	}
	if err := dbConfig.Validate(); err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	sys := db.NewSystem(pool)
	t, err := sys.Queries().TenantGetBySlug(ctx, *slug)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no tenant has the slug %q", *slug)
	} else if err != nil {
		return fmt.Errorf("read tenant %q: %w", *slug, err)
	}
	if len(change) > 0 {
		if t, err = tenant.SetLimits(ctx, sys, t.ID, change, tenant.ActorCommandLine); err != nil {
			return err
		}
	}
	report, err := tenant.Report(ctx, sys, t)
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Fprintln(env.stdout, string(out))
	return nil
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }

func (r *repeated) Set(v string) error {
	*r = append(*r, v)
	return nil
}

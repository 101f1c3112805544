package tenant_test

import (
	"context"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestCreateMakesTenantOwnerAndMembership(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)

	first, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "Acme Corp. (EU)", AdminEmail: "Ops@Acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Slug != "acme-corp-eu" || len(first.AdminPassword) < 20 {
		t.Fatalf("created = %+v, want slug acme-corp-eu and a generated password", first)
	}
	q := dbsqlc.New(d.Pool)
	user, err := q.UserGetByEmail(ctx, "ops@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if user.PasswordHash == nil || auth.VerifyPassword(*user.PasswordHash, first.AdminPassword) != nil {
		t.Fatal("the stored hash does not verify the password that was shown")
	}
	members, err := q.MembershipListByUser(ctx, user.ID)
	if err != nil || len(members) != 1 || members[0].Role != "owner" || members[0].TenantID != first.TenantID {
		t.Fatalf("memberships = %+v (%v), want one owner membership of the new tenant", members, err)
	}

	// The same person creating a second tenant keeps their account and password.
	second, err := tenant.Create(ctx, d.System(), tenant.NewTenant{Name: "Acme Labs", AdminEmail: "ops@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if second.AdminPassword != "" {
		t.Error("an existing user got a new password")
	}
	if members, _ = q.MembershipListByUser(ctx, user.ID); len(members) != 2 {
		t.Errorf("memberships = %d, want 2", len(members))
	}

	for _, bad := range []tenant.NewTenant{
		{Name: "Acme Corp EU", AdminEmail: "x@acme.example"}, // same slug
		{Name: "!!!", AdminEmail: "x@acme.example"},
		{Name: "Fine", AdminEmail: "not-an-email"},
	} {
		if _, err := tenant.Create(ctx, d.System(), bad); err == nil || !strings.Contains(err.Error(), "create tenant") {
			t.Errorf("Create(%+v) = %v, want a refusal that says why", bad, err)
		}
	}
}

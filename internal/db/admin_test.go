package db_test

import (
	"context"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// Admin makes and drops databases on the server, a template too, and tells whether the server can build
// the timescale flavor; what the harness and `infrawatch dev` rely on.
func TestAdminCreatesAndDropsDatabases(t *testing.T) {
	ctx := context.Background()
	name, url := dbtest.NewEmpty(t)
	admin := db.NewAdmin(url) // a superuser's connection to any database of the server will do
	if err := admin.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	exists := func(db string) bool {
		t.Helper()
		var n int
		pool := openPool(t, url)
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	copyName, templateName := name+"_copy", name+"_tpl"
	t.Cleanup(func() {
		_ = admin.DropDatabase(context.Background(), copyName)
		_ = admin.DropDatabase(context.Background(), templateName)
	})
	if err := admin.EnsureDatabase(ctx, templateName); err != nil {
		t.Fatalf("ensure a new database: %v", err)
	}
	if err := admin.EnsureDatabase(ctx, templateName); err != nil {
		t.Fatalf("ensure a database that exists: %v", err)
	}
	if err := admin.MakeTemplate(ctx, templateName); err != nil {
		t.Fatalf("make a template: %v", err)
	}
	if err := admin.CreateDatabase(ctx, copyName, templateName); err != nil {
		t.Fatalf("copy the template: %v", err)
	}
	if err := admin.CreateDatabase(ctx, copyName, ""); err == nil {
		t.Error("creating a database that exists: no error")
	}
	if !exists(copyName) || !exists(templateName) {
		t.Fatalf("after creating: copy %v, template %v; want both", exists(copyName), exists(templateName))
	}
	for _, n := range []string{copyName, templateName, templateName} { // the second drop finds nothing, which is fine
		if err := admin.DropDatabase(ctx, n); err != nil {
			t.Fatalf("drop %s: %v", n, err)
		}
	}
	if exists(copyName) || exists(templateName) {
		t.Errorf("after dropping: copy %v, template %v; want neither", exists(copyName), exists(templateName))
	}
	usable, why, err := admin.TimescaleUsable(ctx)
	if err != nil || (!usable && why == "") {
		t.Errorf("TimescaleUsable() = %v, %q, %v; want an answer, and a reason when not", usable, why, err)
	}
}

func openPool(t *testing.T, url string) *db.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), db.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

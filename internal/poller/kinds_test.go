package poller

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// The database allows exactly the kinds the registry has: a kind registered without its migration
// could be validated but never saved, one allowed but not registered would be stored and never run.
func TestDatabaseAllowsExactlyTheRegisteredKinds(t *testing.T) {
	d := dbtest.New(t, dbtest.Flavors(t)[0])
	var def string
	if err := d.Pool.QueryRow(context.Background(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
	    WHERE conrelid = 'app.checks'::regclass AND conname = 'checks_kind_check'`).Scan(&def); err != nil {
		t.Fatalf("the CHECK on app.checks.kind: %v", err)
	}
	var allowed []string
	for _, m := range regexp.MustCompile(`'([a-z0-9_]+)'::text`).FindAllStringSubmatch(def, -1) {
		allowed = append(allowed, m[1])
	}
	slices.Sort(allowed)
	registered := slices.Sorted(slices.Values(checks.Names()))
	if !slices.Equal(allowed, registered) {
		t.Errorf("app.checks.kind allows %v (%s); the registry has %v", allowed, def, registered)
	}
}

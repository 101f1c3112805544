package alerting

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// The CHECK on app.alert_rules.kind allows exactly the kinds the registry has (adding a kind, step 4).
func TestDatabaseAllowsExactlyTheRegisteredKinds(t *testing.T) {
	d := dbtest.New(t, dbtest.Flavors(t)[0])
	var def string
	if err := d.Pool.QueryRow(context.Background(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
	    WHERE conrelid = 'app.alert_rules'::regclass AND conname = 'alert_rules_kind_check'`).Scan(&def); err != nil {
		t.Fatalf("the CHECK on app.alert_rules.kind: %v", err)
	}
	var allowed []string
	for _, m := range regexp.MustCompile(`'([a-z0-9_]+)'::text`).FindAllStringSubmatch(def, -1) {
		allowed = append(allowed, m[1])
	}
	slices.Sort(allowed)
	if registered := slices.Sorted(slices.Values(Names())); !slices.Equal(allowed, registered) {
		t.Errorf("app.alert_rules.kind allows %v (%s); the registry has %v", allowed, def, registered)
	}
}

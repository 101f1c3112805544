package bi_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/tenant"
	sqlscripts "github.com/infrawatch/infrawatch/sql"
)

type example struct{ name, sql string }

// examples splits sql/bi/examples.sql at its "-- name:" lines.
func examples(t *testing.T) []example {
	t.Helper()
	var out []example
	for _, part := range strings.Split(sqlscripts.BIExamples, "-- name: ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		out = append(out, example{name: strings.TrimSpace(name), sql: strings.TrimSpace(body)})
	}
	if len(out) < 10 {
		t.Fatalf("sql/bi/examples.sql has %d queries, want at least ten", len(out))
	}
	return out
}

// Every query of sql/bi/examples.sql runs as a BI login, answers rows, and answers exactly the same
// rows once the other tenant and all its data are deleted: nothing of the other tenant counted in any
// of them. Both runs are in one transaction, so now() is the same for both.
func TestExamplesRunAsALoginOnItsTenantOnly(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		w := newWorld(t, flavor)
		dbtest.MaterializeRollups(t, w.d, time.Now().Add(-48*time.Hour))
		conn := connect(t, w.issue(t, w.alpha))
		list := examples(t)
		views, covered := biViews(t, w.d), map[string]bool{}

		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			before := map[string][]string{}
			for _, ex := range list {
				got, err := rows(ctx, tx, ex.sql)
				if err != nil {
					t.Fatalf("%s: %v\n%s", ex.name, err, ex.sql)
				}
				if len(got) == 0 {
					t.Errorf("%s answers no row; the fixture must give it some", ex.name)
				}
				for _, row := range got {
					if strings.Contains(row, "bravo") {
						t.Errorf("%s answers a row of bravo: %s", ex.name, row)
					}
				}
				before[ex.name] = got
				for _, v := range views {
					if strings.Contains(ex.sql, v+"\n") || strings.Contains(ex.sql, v+" ") {
						covered[v] = true
					}
				}
			}
			if err := tenant.Delete(ctx, w.d.System(), w.bravo.id); err != nil {
				t.Fatal(err)
			}
			for _, ex := range list {
				after, err := rows(ctx, tx, ex.sql)
				if err != nil {
					t.Fatalf("%s after bravo's deletion: %v", ex.name, err)
				}
				if !slices.Equal(before[ex.name], after) {
					t.Errorf("%s answered otherwise once bravo was gone:\nbefore %v\nafter  %v", ex.name, before[ex.name], after)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			if !covered[v] {
				t.Errorf("no example reads %s", v)
			}
		}
	})
}

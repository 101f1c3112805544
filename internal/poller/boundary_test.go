package poller

import (
	"os/exec"
	"strings"
	"testing"
)

// The poller, the check kinds and the events publisher reach PostgreSQL through internal/db (db.System
// and sqlc) only: none of them imports the driver in its production code, so errors are the
// translated ones (db.ErrNotFound, …) and every statement is in queries/.
func TestPollerChecksAndEventsDoNotImportTheDriver(t *testing.T) {
	const module = "github.com/infrawatch/infrawatch/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`,
		module+"internal/poller", module+"internal/checks", module+"internal/events", module+"cmd/infrawatch-pollbench").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "github.com/jackc/pgx") {
				t.Errorf("%s imports %s; go through internal/db instead", pkg, imp)
			}
		}
	}
}

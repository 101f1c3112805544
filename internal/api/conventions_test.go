package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The HTTP layer reaches the database through internal/db only: it never needs the driver, whose
// errors the runners translate (db.ErrNotFound, db.ErrTimeout, …).
func TestAPIImportsNoDatabaseDriver(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.HasPrefix(imp, "github.com/jackc/pgx") {
			t.Errorf("internal/api imports %s", imp)
		}
	}
}

package query

import (
	"os/exec"
	"strings"
	"testing"
)

// The planner is domain logic: whatever serves it (the REST API, the live stream, reports to come)
// maps its typed errors to its own answers. It imports nothing of HTTP.
func TestQueryKnowsNothingOfHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		switch {
		case imp == "net/http", strings.HasPrefix(imp, "github.com/gin-gonic/"), strings.HasSuffix(imp, "/internal/api"),
			strings.HasPrefix(imp, "github.com/jackc/pgx"):
			t.Errorf("internal/query imports %s", imp)
		}
	}
}

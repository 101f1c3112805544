// Package architecture_test holds the rules about which package may import what, checked over `go list`,
// so that a shortcut through the layers fails a test instead of waiting for a review to notice it.
package architecture_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/infrawatch/infrawatch"

// driverUsers may import the PostgreSQL driver (github.com/jackc/pgx) in production code: internal/db,
// which owns the connection to PostgreSQL, and the users of the protocol itself — the COPY of the samples
// writer, the LISTEN of the stream hub, the NOTIFY of events. cmd/infrawatch-bench is the one exception:
// its baseline is a raw COPY, without any of infrawatch in the way. Everything else reaches the database
// through internal/db (db.System, db.TenantRunner) and the errors it translates.
var driverUsers = []string{
	module + "/internal/db",
	module + "/internal/ingest",
	module + "/internal/stream",
	module + "/internal/events",
	module + "/cmd/infrawatch-bench",
}

func mayUseDriver(pkg string) bool {
	return slices.Contains(driverUsers, pkg) || strings.HasPrefix(pkg, module+"/internal/db/")
}

func TestOnlyTheDatabaseBoundaryImportsTheDriver(t *testing.T) {
	// .Imports are a package's production imports; its tests' imports are listed apart and may use pgx.
	for _, line := range goList(t, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...") {
		pkg, imports, _ := strings.Cut(line, " ")
		if mayUseDriver(pkg) {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "github.com/jackc/pgx") {
				t.Errorf("%s imports %s: only internal/db, ingest, stream and events may use the driver", pkg, imp)
			}
		}
	}
}

// The HTTP layer validates checks through internal/checks; the poller's probes (raw sockets, SNMP) are
// the poller role's and must not come into the API's package.
func TestAPIDoesNotDependOnThePoller(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./internal/api") {
		if dep == module+"/internal/poller" {
			t.Errorf("internal/api depends on %s", dep)
		}
	}
}

// The agent runs on every monitored host: its binary must not carry the server (the command line, the
// HTTP API, the database driver).
func TestAgentDoesNotCarryTheServer(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./cmd/infrawatch-agent") {
		for _, server := range []string{module + "/internal/cli", module + "/internal/api", module + "/internal/db",
			"github.com/jackc/pgx/v5", "github.com/gin-gonic/gin"} {
			if dep == server {
				t.Errorf("cmd/infrawatch-agent depends on %s", dep)
			}
		}
	}
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

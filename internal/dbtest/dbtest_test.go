package dbtest

import (
	"os/exec"
	"strings"
	"testing"
)

// Under -short (make test-short) a test that needs PostgreSQL is skipped and says why, without looking
// for a server: the quick loop runs on a machine without one.
func TestShortSkipsDatabaseTests(t *testing.T) {
	cmd := exec.Command("go", "test", "-short", "-count=1", "-v", "-run", "^TestSystemTranslatesErrors$", "../db")
	cmd.Env = append(cmd.Environ(), EnvDatabaseURL+"=postgres://nobody@127.0.0.1:1/none") // a server that is not there
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -short ../db: %v\n%s", err, out)
	}
	const want = "dbtest: -short runs unit tests only; this test needs PostgreSQL"
	if !strings.Contains(string(out), "--- SKIP: TestSystemTranslatesErrors") || !strings.Contains(string(out), want) {
		t.Errorf("go test -short ../db does not skip its database test with %q:\n%s", want, out)
	}
}

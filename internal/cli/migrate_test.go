package cli

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMigrateCommand(t *testing.T) {
	_, url := dbtest.NewEmpty(t)
	latest := db.LatestMigration()

	code, out, _ := run(t, "migrate", "status", "--database-url", url)
	if code != 0 || !strings.Contains(out, "flavor:  none") || !strings.Contains(out, "version: 0") ||
		!strings.Contains(out, "pending") {
		t.Fatalf("status of an empty database: %d\n%s", code, out)
	}

	t.Setenv("INFRAWATCH_DATABASE_URL", url) // the environment works as well as the flag
	if code, out, errOut := run(t, "migrate", "up", "--flavor", "postgres"); code != 0 || !strings.Contains(out, "postgres flavor") {
		t.Fatalf("up: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, "migrate", "status")
	if code != 0 || !strings.Contains(out, "flavor:  postgres") || !strings.Contains(out, "dirty:   false") ||
		!strings.Contains(out, "state:   current") {
		t.Fatalf("status after up: %d\n%s", code, out)
	}

	// Not on a terminal: down does not ask. Versions may leave gaps: one step down is below the latest.
	if code, out, errOut := run(t, "migrate", "down", "--steps", "1"); code != 0 ||
		!strings.Contains(out, "schema at version ") || strings.Contains(out, "version "+itoa(latest)) {
		t.Fatalf("down --steps 1: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, "migrate", "down", "--yes"); code != 0 || !strings.Contains(out, "version 0") {
		t.Fatalf("down: %d\n%s%s", code, out, errOut)
	}

	for _, bad := range [][]string{
		{"migrate", "sideways"},
		{"migrate", "up", "--flavor", "oracle"},
		{"migrate", "down", "--steps", "-1"},
	} {
		if code, _, errOut := run(t, bad...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want a failure that says why", bad, code, errOut)
		}
	}
}

func TestMigrateDownAsksOnATerminal(t *testing.T) {
	_, url := dbtest.NewEmpty(t)
	if code, _, errOut := run(t, "migrate", "up", "--database-url", url); code != 0 {
		t.Fatal(errOut)
	}
	var out, errOut bytes.Buffer
	env := &environment{stdin: strings.NewReader("no\n"), stdout: &out, stderr: &errOut, stdinIsTerm: true}
	err := runMigrate(t.Context(), env, []string{"down", "--database-url", url})
	if err == nil || !strings.Contains(out.String(), "Type yes to continue") {
		t.Fatalf("down on a terminal answered no: err=%v\n%s", err, out.String())
	}
	st, _ := db.NewMigrator(url).Status(t.Context())
	if st.Version != db.LatestMigration() {
		t.Fatalf("schema changed although the answer was no: %+v", st)
	}
	env.stdin = strings.NewReader("yes\n")
	if err := runMigrate(t.Context(), env, []string{"down", "--database-url", url}); err != nil {
		t.Fatal(err)
	}
	if st, _ = db.NewMigrator(url).Status(t.Context()); st.Version != 0 {
		t.Fatalf("down confirmed with yes left version %d", st.Version)
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	if code, _, errOut := run(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	code, out, _ := run(t, "serve", "--help")
	if code != 0 || !strings.Contains(out, "INFRAWATCH_DATABASE_URL") || !strings.Contains(out, "INFRAWATCH_LISTEN") ||
		!strings.Contains(out, "INFRAWATCH_ROLES") {
		t.Errorf("serve --help: %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "serve", "--roles", "api,teleporter", "--database-url", "postgres://x"); code == 0 ||
		!strings.Contains(errOut, `unknown role "teleporter"`) {
		t.Errorf("unknown role: %d %q", code, errOut)
	}
}

func itoa(v uint) string { return strconv.FormatUint(uint64(v), 10) }

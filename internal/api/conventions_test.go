package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
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

// Tests wait for what they wait for — a signal, an answer — and never for a while of wall-clock
// time; a deadline that only keeps a broken test from hanging is fine.
func TestAPITestsDoNotSleep(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	sleep := "time." + "Sleep(" // spelled apart, so that this file does not find itself
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, sleep) {
				t.Errorf("%s:%d sleeps: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

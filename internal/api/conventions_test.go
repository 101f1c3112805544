package api_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

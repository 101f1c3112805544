package cli

import (
	"strings"
	"testing"
)

// A short operator token could be guessed; serve refuses to start with one and says why, before it
// touches the database.
func TestServeRefusesAShortOperatorToken(t *testing.T) {
	code, _, stderr := run(t, "serve", "--database-url", "postgres://nobody@127.0.0.1:1/none", "--operator-token", "only-24-characters-long!")
	if code != 1 || !strings.Contains(stderr, "--operator-token must be at least 32 characters") {
		t.Fatalf("serve with a 24-character operator token: exit %d, %q; want 1 and a message asking for 32 characters", code, stderr)
	}
}

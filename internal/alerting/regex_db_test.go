package alerting

import (
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// Every RE2 pattern the translation accepts matches the same strings in PostgreSQL as in Go, on the
// corners where the two dialects differ when handed the same text (case folding, classes, the dot and
// newlines, anchors inside, escapes, non-ASCII); the patterns it cannot carry are refused.
func TestRegexTranslationMatchesLikeGo(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		if flavor != db.FlavorPostgres {
			t.Skip("regular expressions are PostgreSQL's alike in both flavors; the postgres flavor runs this test")
		}
		d := dbtest.New(t, flavor)
		patterns := []string{
			`web-.*`, `web-[0-9]+`, `(?i)WEB-\d+`, `a.c`, `(?s)a.c`, `[[:alpha:]]+`, `\w+`, `\d{2,3}`, `[^a-c]x`,
			`(foo|bar)baz`, `x*`, `(?i)straße`, `é+`, `[α-ω]+`, `\.`, `a|`, `^a`, `a$`, `\Aab\z`, `(?:ab){2}`, `a{0}b`,
			`[\p{Greek}]+`, `\pL+`, `(?i)[k]`, `\x41`, `[\]\-]`, `()`, `(?U)a+`, `a+?`, `[^\n]+`, `\s`, `\S+`, `[[:^digit:]]+`, `a{300}`, `(ab){1,20}`,
		}
		inputs := []string{"", "a", "abc", "a\nc", "web-1", "WEB-22", "web-", "webx", "foobaz", "barbaz", "bazbaz", "12", "123",
			"1234", "dx", "ax", "straße", "STRASSE", "STRAßE", "ééé", "αβγ", "ΑΒΓ", "a.", ".", "abab", "b", "K", "k", "\u212a",
			"A", "]", "-", " ", "\t", "x y", "aaa", "ab"}
		for _, p := range patterns {
			goRE, pg, err := compileRE2(p)
			if err != nil {
				t.Errorf("%q refused: %v", p, err)
				continue
			}
			for _, in := range inputs {
				var got bool
				if err := d.Pool.QueryRow(t.Context(), `SELECT $1::text ~ $2::text`, in, pg).Scan(&got); err != nil {
					t.Fatalf("%q as %q: %v", p, pg, err)
				}
				if want := goRE.MatchString(in); got != want {
					t.Errorf("%q (PostgreSQL %q) on %q: PostgreSQL %v, Go %v", p, pg, in, got, want)
				}
			}
		}
		for _, p := range []string{`\bword\b`, `(?m)^a$`, `(a[bc]d){2,1000}`, `(`, strings.Repeat("a", 2000)} {
			if _, _, err := compileRE2(p); err == nil {
				t.Errorf("%q was accepted", p)
			}
		}
	})
}

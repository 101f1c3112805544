package alerting

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
)

// Regular expressions are written in RE2's syntax (Go's regexp) and matched in two places: in SQL by
// the evaluation statements and the maintenance query (PostgreSQL's regular expressions, "AREs"), and
// in Go for silences, maintenance windows and the tests' independent computation. The two dialects
// differ in corners (what \w, \b and classes like [[:word:]] mean, case folding, the repetition bound),
// so an expression is never handed to PostgreSQL as the user wrote it: it is parsed as RE2, refused when
// it uses what cannot be said the same way in both, and printed again in an ARE syntax of plain
// characters, bracketed ranges and groups, so that both engines read the same language. Matches are
// anchored at both ends, as Prometheus anchors label matchers.

// maxRepeat is PostgreSQL's bound on {m,n} (RE_DUP_MAX).
const maxRepeat = 255

// maxPatternBytes bounds a pattern as the user writes it, maxTranslatedBytes as PostgreSQL reads it
// (Go expands counted repetitions: (ab){2,100} is a hundred nested groups).
const (
	maxPatternBytes    = 1024
	maxTranslatedBytes = 16 * 1024
)

// compileRE2 parses a pattern, refusing what the translation cannot carry, and returns the Go matcher
// (anchored) and the PostgreSQL pattern (anchored) that read the same language.
func compileRE2(pattern string) (*regexp.Regexp, string, error) {
	if len(pattern) > maxPatternBytes {
		return nil, "", fmt.Errorf("must be at most %d bytes", maxPatternBytes)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, "", fmt.Errorf("is not a valid RE2 regular expression: %v", err)
	}
	var b strings.Builder
	b.WriteString("^(?:")
	if err := printARE(&b, re.Simplify()); err != nil {
		return nil, "", err
	}
	b.WriteString(")$")
	if b.Len() > maxTranslatedBytes {
		return nil, "", fmt.Errorf("is too complex (repetitions of groups expand): simplify it")
	}
	goRE, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, "", fmt.Errorf("is not a valid RE2 regular expression: %v", err)
	}
	return goRE, b.String(), nil
}

// printARE writes re in PostgreSQL's ARE syntax.
func printARE(b *strings.Builder, re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpNoMatch:
		b.WriteString(`[^\u0001-\U0010ffff]`) // no character PostgreSQL can store (it stores no NUL)
	case syntax.OpEmptyMatch:
		b.WriteString("(?:)")
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && hasFold(r) {
				b.WriteByte('[')
				for f := r; ; {
					writeRune(b, f)
					if f = unicode.SimpleFold(f); f == r {
						break
					}
				}
				b.WriteByte(']')
				continue
			}
			writeRune(b, r)
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			b.WriteString(`[^\u0001-\U0010ffff]`)
			break
		}
		b.WriteByte('[')
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if lo == 0 {
				lo = 1 // PostgreSQL text holds no NUL
				if hi == 0 {
					continue
				}
			}
			writeEscaped(b, lo)
			if hi != lo {
				b.WriteByte('-')
				writeEscaped(b, hi)
			}
		}
		b.WriteByte(']')
	case syntax.OpAnyCharNotNL:
		b.WriteString(`[^\n]`)
	case syntax.OpAnyChar:
		b.WriteString(`[\u0001-\U0010ffff]`)
	case syntax.OpBeginText:
		b.WriteString(`\A`)
	case syntax.OpEndText:
		b.WriteString(`\Z`)
	case syntax.OpBeginLine, syntax.OpEndLine:
		return fmt.Errorf("uses ^ or $ in multi-line mode ((?m)), which is not supported")
	case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return fmt.Errorf(`uses \b or \B, which is not supported`)
	case syntax.OpCapture:
		b.WriteString("(?:")
		if err := printARE(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteByte(')')
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		b.WriteString("(?:")
		if err := printARE(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteByte(')')
		b.WriteString(map[syntax.Op]string{syntax.OpStar: "*", syntax.OpPlus: "+", syntax.OpQuest: "?"}[re.Op])
	case syntax.OpRepeat:
		if re.Min > maxRepeat || re.Max > maxRepeat {
			return fmt.Errorf("repeats more than %d times, which is not supported", maxRepeat)
		}
		b.WriteString("(?:")
		if err := printARE(b, re.Sub[0]); err != nil {
			return err
		}
		b.WriteByte(')')
		switch {
		case re.Max == -1:
			fmt.Fprintf(b, "{%d,}", re.Min)
		case re.Max == re.Min:
			fmt.Fprintf(b, "{%d}", re.Min)
		default:
			fmt.Fprintf(b, "{%d,%d}", re.Min, re.Max)
		}
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			b.WriteString("(?:)")
		}
		for _, sub := range re.Sub {
			if err := printARE(b, sub); err != nil {
				return err
			}
		}
	case syntax.OpAlternate:
		b.WriteString("(?:")
		for i, sub := range re.Sub {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString("(?:")
			if err := printARE(b, sub); err != nil {
				return err
			}
			b.WriteByte(')')
		}
		b.WriteByte(')')
	default:
		return fmt.Errorf("uses an operator that is not supported (%v)", re.Op)
	}
	return nil
}

func hasFold(r rune) bool { return unicode.SimpleFold(r) != r }

// writeRune writes one character outside brackets: letters and digits of ASCII as they are, anything
// else as a character-entry escape, which no ARE reads as an operator.
func writeRune(b *strings.Builder, r rune) {
	if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
		b.WriteRune(r)
		return
	}
	writeEscaped(b, r)
}

// writeEscaped writes r as \uXXXX or \UXXXXXXXX, valid inside and outside brackets.
func writeEscaped(b *strings.Builder, r rune) {
	if r <= 0xffff {
		fmt.Fprintf(b, `\u%04x`, r)
		return
	}
	fmt.Fprintf(b, `\U%08x`, r)
}

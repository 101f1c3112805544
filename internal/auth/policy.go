package auth

import (
	_ "embed"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrWeakPassword matches every refusal of the password policy (400); the error's text says why.
var ErrWeakPassword = errors.New("weak password")

// weakPassword is a refusal of the password policy; its text completes "password …" and "new_password …".
type weakPassword string

func (e weakPassword) Error() string        { return string(e) }
func (e weakPassword) Is(target error) bool { return target == ErrWeakPassword }

//go:embed common_passwords.txt
var commonPasswordsText string

// commonPasswords holds the lines of common_passwords.txt.
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
}()

// leet undoes the usual letter-for-symbol swaps: p@ssw0rd is password.
var leet = strings.NewReplacer("@", "a", "4", "a", "3", "e", "0", "o", "1", "i", "!", "i", "$", "s", "5", "s", "7", "t")

// CheckPassword applies the password policy to a new password of the account email, as NIST SP 800-63B
// § 3.1.1.2 asks: 10 to 256 characters; not a common password, nor one padded with digits or symbols
// (Password2024!) or spelled with symbols (p@ssw0rd); not one character or a short pattern repeated; not
// a run of consecutive characters (1234567890); not the email or its local part. Length beats every other
// rule, so there are no rules on character classes.
func CheckPassword(password, email string) error {
	if n := utf8.RuneCountInString(password); n < 10 || n > 256 {
		return weakPassword("must be 10 to 256 characters")
	}
	lower := strings.ToLower(password)
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	if email != "" && (lower == strings.ToLower(email) || lower == local) {
		return weakPassword("must not be the email address")
	}
	runes := []rune(lower)
	if repeatsAPattern(runes) {
		return weakPassword("must not be one character or a short pattern repeated")
	}
	if consecutive(runes) {
		return weakPassword("must not be a run of consecutive characters such as 1234567890")
	}
	stem := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if commonPasswords[lower] || commonPasswords[stem] || commonPasswords[leet.Replace(stem)] {
		return weakPassword("is one of the most common passwords, or one with digits or symbols added; a phrase of a few words is better")
	}
	return nil
}

// repeatsAPattern reports whether r is a shorter sequence repeated at least twice (aaaa, abcabcab).
func repeatsAPattern(r []rune) bool {
	for period := 1; period <= len(r)/2; period++ {
		repeats := true
		for i := period; i < len(r); i++ {
			if r[i] != r[i-period] {
				repeats = false
				break
			}
		}
		if repeats {
			return true
		}
	}
	return false
}

// consecutive reports whether every character of r follows the one before, up or down (abcdef, 98765).
func consecutive(r []rune) bool {
	step := r[1] - r[0]
	if step != 1 && step != -1 {
		return false
	}
	for i := 2; i < len(r); i++ {
		if r[i]-r[i-1] != step {
			return false
		}
	}
	return true
}

package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	refused := map[string]string{
		"short":                  "10 to 256",
		strings.Repeat("x", 257): "10 to 256",
		"zzzzzzzzzzzz":           "repeated",
		"abcabcabcab":            "repeated",
		"passwordpassword":       "repeated",
		"1234567890":             "common",
		"abcdefghijklm":          "consecutive",
		"zyxwvutsrqpo":           "consecutive",
		"qwertyuiop":             "common",
		"Password2024!":          "common",
		"p@ssw0rd123":            "common",
		"!!Welcome123":           "common",
		"infrawatch1234":         "common",
		"Ana.Lopez@Example.com":  "email",
	}
	for password, why := range refused {
		err := CheckPassword(password, "ana.lopez@example.com")
		if !errors.Is(err, ErrWeakPassword) || !strings.Contains(err.Error(), why) {
			t.Errorf("CheckPassword(%q) = %v, want a refusal that says %q", password, err, why)
		}
	}
	for _, ok := range []string{"correct horse battery staple", "owner-password-alpha", "Tr0ub4dor&3xyz", "ünïcödé-pässwörd",
		"monkey business in paris", "ana.lopez.1@example.com"} {
		if err := CheckPassword(ok, "ana.lopez@example.com"); err != nil {
			t.Errorf("CheckPassword(%q) = %v, want it accepted", ok, err)
		}
	}
	if got := len(commonPasswords); got < 300 {
		t.Errorf("the common password list has %d entries, want a few hundred", got)
	}
}

package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=2,p=2$") || strings.Contains(hash, "horse") {
		t.Fatalf("hash = %q", hash)
	}
	if err := VerifyPassword(hash, "correct horse battery staple"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := VerifyPassword(hash, "Correct horse battery staple"); !errors.Is(err, ErrPasswordMismatch) {
		t.Errorf("wrong password: err = %v, want ErrPasswordMismatch", err)
	}
	other, _ := HashPassword("correct horse battery staple")
	if other == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyPasswordRejectsMalformedHashes(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=65536,t=2,p=2$c2FsdA$a2V5",
		"$argon2id$v=19$m=999999999,t=2,p=2$c2FsdA$a2V5", "$argon2id$v=19$m=65536,t=2,p=0$c2FsdA$a2V5",
		"$argon2id$v=19$m=65536,t=2,p=2$!!$a2V5"} {
		if err := VerifyPassword(h, "x"); err == nil || errors.Is(err, ErrPasswordMismatch) {
			t.Errorf("VerifyPassword(%q) = %v, want a malformed-hash error", h, err)
		}
	}
}

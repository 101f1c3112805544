// Package auth proves who is calling: passwords, access and refresh tokens, API keys and OAuth clients,
// and the roles and scopes that say what a caller may do. It must never log, return or store a secret in
// the clear (a new secret is returned once, to be shown once).
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params is the cost of an argon2id hash. Each hash records its own, so the cost can change
// without invalidating stored passwords.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// PasswordCost is what new hashes cost. OWASP's recommended minimum is m=19 MiB, t=2, p=1; this is
// somewhat stronger and takes about 50 ms on one core of a 2-core machine. Test suites of other packages
// that create many users may lower it; nothing else changes it.
var PasswordCost = Argon2Params{MemoryKiB: 64 * 1024, Time: 2, Threads: 2}

const (
	argonKeyLen  = 32
	argonSaltLen = 16
)

// ErrPasswordMismatch means the password does not match the hash.
var ErrPasswordMismatch = errors.New("password does not match")

// HashPassword returns an argon2id hash of password in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$key), which records its own parameters so they can change later.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	c := PasswordCost
	key := argon2.IDKey([]byte(password), salt, c.Time, c.MemoryKiB, c.Threads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.MemoryKiB, c.Time, c.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks password against a hash made by HashPassword, in constant time.
func VerifyPassword(hash, password string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("verify password: not an argon2id hash")
	}
	var version int
	var memory, iterations uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("verify password: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &iterations, &threads); err != nil {
		return errors.New("verify password: malformed parameters")
	}
	if memory > 1024*1024 || iterations > 100 || threads == 0 {
		return errors.New("verify password: parameters out of range")
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return errors.New("verify password: malformed salt or key")
	}
	got := argon2.IDKey([]byte(password), salt, iterations, memory, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrPasswordMismatch
	}
	return nil
}

// RandomSecret returns n random bytes encoded for humans and URLs (base64url, no padding).
func RandomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"strings"
)

// Prefixes of the opaque credentials infrawatch hands out. They make a leaked secret recognisable (to
// secret scanners and to people) and tell the server which kind it was given.
const (
	apiKeyPrefix       = "iwk_"
	refreshTokenPrefix = "iwr_"
	inviteTokenPrefix  = "iwi_"
	clientIDPrefix     = "iwc_"
)

// HashSecret hashes a high-entropy secret for storage. SHA-256 suffices: these secrets are 32 random
// bytes, so there is nothing to brute-force (passwords use argon2id instead).
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// secretMatches compares a presented secret with a stored hash in constant time.
func secretMatches(secret string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashSecret(secret), hash) == 1
}

// NewAPIKey returns a new API key, the prefix stored and shown in lists ("iwk_" and 12 characters),
// and the hash of its secret part. The full key is shown once.
func NewAPIKey() (key, prefix string, hash []byte, err error) {
	id, err := RandomSecret(9)
	if err != nil {
		return "", "", nil, err
	}
	secret, err := RandomSecret(32)
	if err != nil {
		return "", "", nil, err
	}
	id = strings.NewReplacer("-", "x", "_", "y").Replace(id) // the separator stays unambiguous
	prefix = apiKeyPrefix + id
	return prefix + "_" + secret, prefix, HashSecret(secret), nil
}

// splitAPIKey takes "iwk_<id>_<secret>" apart.
func splitAPIKey(key string) (prefix, secret string, ok bool) {
	if !strings.HasPrefix(key, apiKeyPrefix) || len(key) > 200 {
		return "", "", false
	}
	rest := key[len(apiKeyPrefix):]
	i := strings.IndexByte(rest, '_')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return apiKeyPrefix + rest[:i], rest[i+1:], true
}

// newOpaqueToken returns a random token with the given prefix and its hash.
func newOpaqueToken(prefix string) (token string, hash []byte, err error) {
	s, err := RandomSecret(32)
	if err != nil {
		return "", nil, err
	}
	token = prefix + s
	return token, HashSecret(token), nil
}

// NewClientCredentials returns a new OAuth client id and secret, and the secret's hash.
func NewClientCredentials() (clientID, secret string, hash []byte, err error) {
	id, err := RandomSecret(12)
	if err != nil {
		return "", "", nil, err
	}
	secret, err = RandomSecret(32)
	if err != nil {
		return "", "", nil, err
	}
	return clientIDPrefix + id, secret, HashSecret(secret), nil
}

// NewInviteToken returns a one-time invitation token and its hash.
func NewInviteToken() (token string, hash []byte, err error) {
	return newOpaqueToken(inviteTokenPrefix)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

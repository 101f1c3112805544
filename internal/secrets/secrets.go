// Package secrets seals the secrets infrawatch must keep and use again — notification channels' tokens
// and webhook URLs, checks' SNMP communities, passwords and HTTP headers — with AES-256-GCM under the
// deployment's keys, so that a copy of the database (a dump, a backup, a replica) does not carry them in
// the clear.
//
// The keys come from INFRAWATCH_SECRET_KEY (or --secret-key): one or more comma-separated `id:key`
// pairs, each key 32 random bytes in base64 (`openssl rand -base64 32`). The first key seals; every key
// opens. A sealed blob names the key that sealed it, so rotating is: put a new key first, keep the old
// ones after it, run `infrawatch secrets rotate` (which seals everything again with the first key), then
// drop the old keys.
//
// Every blob is sealed for a context (the additional data of GCM): the column and the tenant it belongs
// to (For). A blob copied to another tenant's row, or from a channel to a check, does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// version is the first byte of every blob, so that the format can change without guessing.
const version byte = 1

// Errors that callers test for with errors.Is.
var (
	// ErrUnknownKey: the blob was sealed with a key that is not in the keyring (it was dropped too soon,
	// or the process runs with another deployment's keys).
	ErrUnknownKey = errors.New("sealed with a key that is not configured")
	// ErrCorrupt: the blob is not one this package sealed, was altered, or belongs to another context.
	ErrCorrupt = errors.New("sealed secret does not open: altered, truncated or of another context")
)

// keyIDRE is what a key id may be: short and plain, since it is stored in every blob.
var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring holds the deployment's keys: the first seals, all open. It is safe for concurrent use.
type Keyring struct {
	keys []key
}

// Parse reads a key specification: `id:base64key[,id:base64key…]`, each key 32 bytes in standard or
// URL-safe base64, padded or not. Errors never quote a key.
func Parse(spec string) (*Keyring, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("no key given")
	}
	k := &Keyring{}
	seen := map[string]bool{}
	for i, part := range strings.Split(spec, ",") {
		id, encoded, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("key %d: want id:base64key (e.g. k1:$(openssl rand -base64 32))", i+1)
		}
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("key %d: the id must be 1 to 32 letters, digits, '_', '.' or '-'", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("key %d: id %q is given twice", i+1, id)
		}
		seen[id] = true
		raw, err := decodeKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("key %d (%s): %w", i+1, id, err)
		}
		aead, err := newAEAD(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d (%s): %w", i+1, id, err)
		}
		k.keys = append(k.keys, key{id: id, aead: aead})
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != KeySize {
				return nil, fmt.Errorf("the key is %d bytes; it must be %d (openssl rand -base64 32)", len(raw), KeySize)
			}
			return raw, nil
		}
	}
	return nil, errors.New("the key is not base64")
}

func newAEAD(raw []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewKeySpec returns a new random key as a specification Parse reads (`id:base64key`), for `infrawatch
// dev` and for operators (`infrawatch secrets rotate` prints one to put first).
func NewKeySpec(id string) (string, error) {
	if !keyIDRE.MatchString(id) {
		return "", fmt.Errorf("key id %q: 1 to 32 letters, digits, '_', '.' or '-'", id)
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

// PrimaryID is the id of the key that seals.
func (k *Keyring) PrimaryID() string { return k.keys[0].id }

// The columns that hold sealed secrets, each a context of its own.
const (
	ChannelsColumn        = "app.channels.secrets"
	ChecksColumn          = "app.checks.secrets"
	TrapCredentialsColumn = "app.trap_credentials.secrets"
)

// Context is what a blob is sealed for: the column it lives in and the tenant whose row holds it.
type Context []byte

// For returns the context of a secret kept in column (app.channels.secrets, app.checks.secrets) of a
// row of tenant.
func For(column string, tenant uuid.UUID) Context {
	return Context(column + "\x00" + tenant.String())
}

// Seal encrypts plaintext with the first key for ctx. Each call uses a fresh random nonce, so sealing
// the same secret twice gives different blobs.
func (k *Keyring) Seal(plaintext []byte, ctx Context) ([]byte, error) {
	primary := k.keys[0]
	nonce := make([]byte, primary.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := make([]byte, 0, 2+len(primary.id)+len(nonce)+len(plaintext)+primary.aead.Overhead())
	out = append(out, version, byte(len(primary.id)))
	out = append(out, primary.id...)
	out = append(out, nonce...)
	return primary.aead.Seal(out, nonce, plaintext, ctx), nil
}

// KeyID says which key sealed blob.
func KeyID(blob []byte) (string, error) {
	if len(blob) < 2 || blob[0] != version || len(blob) < 2+int(blob[1]) {
		return "", ErrCorrupt
	}
	return string(blob[2 : 2+int(blob[1])]), nil
}

// Open decrypts a blob that Seal made for ctx, with whichever configured key sealed it.
func (k *Keyring) Open(blob []byte, ctx Context) ([]byte, error) {
	id, err := KeyID(blob)
	if err != nil {
		return nil, err
	}
	for _, key := range k.keys {
		if key.id != id {
			continue
		}
		rest := blob[2+len(id):]
		if len(rest) < key.aead.NonceSize()+key.aead.Overhead() {
			return nil, ErrCorrupt
		}
		nonce, sealed := rest[:key.aead.NonceSize()], rest[key.aead.NonceSize():]
		plain, err := key.aead.Open(nil, nonce, sealed, ctx)
		if err != nil {
			return nil, ErrCorrupt
		}
		return plain, nil
	}
	return nil, fmt.Errorf("key %q: %w", id, ErrUnknownKey)
}

// SealJSON seals v as JSON.
func (k *Keyring) SealJSON(v any, ctx Context) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return k.Seal(raw, ctx)
}

// OpenJSON opens a blob SealJSON made into v. A nil or empty blob leaves v as it is: nothing is sealed.
func (k *Keyring) OpenJSON(blob []byte, ctx Context, v any) error {
	if len(blob) == 0 {
		return nil
	}
	raw, err := k.Open(blob, ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// Config is where a process gets its keys: --secret-key or INFRAWATCH_SECRET_KEY.
type Config struct {
	// Keys is the key specification Parse reads.
	Keys string
}

// DefaultConfig has no key: a server must be given one.
func DefaultConfig() Config { return Config{} }

// AddFlags registers --secret-key.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Keys, "secret-key", c.Keys,
		"keys that seal secrets at rest: id:base64key[,id:base64key…], 32-byte keys (openssl rand -base64 32); "+
			"the first seals, all open. Prefer the environment variable to the flag")
}

// Validate refuses a missing or malformed key, naming the flag and its variable. It never quotes a key.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Keys) == "" {
		return errors.New("--secret-key (or INFRAWATCH_SECRET_KEY) is required: the key that seals channel and check " +
			"secrets at rest, e.g. INFRAWATCH_SECRET_KEY=k1:$(openssl rand -base64 32); keep it safe, the secrets do not open without it")
	}
	if _, err := Parse(c.Keys); err != nil {
		return fmt.Errorf("--secret-key (INFRAWATCH_SECRET_KEY): %w", err)
	}
	return nil
}

// Keyring parses the configured keys.
func (c Config) Keyring() (*Keyring, error) {
	k, err := Parse(c.Keys)
	if err != nil {
		return nil, fmt.Errorf("--secret-key (INFRAWATCH_SECRET_KEY): %w", err)
	}
	return k, nil
}

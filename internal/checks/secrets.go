package checks

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// SealSecrets splits a check's settings into what is stored in the clear — the settings with the mask
// ******** where each secret is — and its secrets, sealed for tenant (nil when it has none). The kind's
// Secrets say which settings are secret.
func SealSecrets(keys *secrets.Keyring, tenant uuid.UUID, kind string, settings []byte) (public, sealed []byte, err error) {
	k, ok := Lookup(kind)
	if !ok {
		return nil, nil, fmt.Errorf("unknown check kind %q", kind)
	}
	public, plain, err := secrets.Split(settings, secrets.Fields(k.Secrets()))
	if err != nil || plain == nil {
		return public, nil, err
	}
	sealed, err = keys.Seal(plain, secrets.For(secrets.ChecksColumn, tenant))
	return public, sealed, err
}

// OpenSecrets puts a check's secrets back into its stored settings: the sealed ones, and those a
// migration moved out of the settings that are not sealed yet (staged, in the clear).
func OpenSecrets(keys *secrets.Keyring, tenant uuid.UUID, public, sealed, staged []byte) ([]byte, error) {
	settings := public
	if len(sealed) > 0 {
		plain, err := keys.Open(sealed, secrets.For(secrets.ChecksColumn, tenant))
		if err != nil {
			return nil, fmt.Errorf("open the check's secrets: %w", err)
		}
		if settings, err = secrets.Join(settings, plain); err != nil {
			return nil, err
		}
	}
	if len(staged) > 0 {
		var err error
		if settings, err = secrets.Join(settings, staged); err != nil {
			return nil, err
		}
	}
	return settings, nil
}

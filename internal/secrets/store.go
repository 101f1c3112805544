package secrets

import (
	"context"
	"fmt"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Resealed counts what Reseal sealed anew.
type Resealed struct {
	Channels, Checks, TrapCredentials int
}

// resealBatch is how many rows Reseal reads at a time.
const resealBatch = 200

// Reseal seals the secrets kept in the database with the keyring's first key (system work across
// tenants): with stagedOnly, only the checks' secrets still in the clear (moved out of their settings
// by migration 000014; every `serve` does this before it starts); otherwise every secret not sealed
// with the first key yet too (`infrawatch secrets rotate`). Each row is written on its own and only if
// it did not change meanwhile, so it runs beside live servers; a row changed under it was sealed by
// its writer, with the first key.
func Reseal(ctx context.Context, sys *db.System, keys *Keyring, stagedOnly bool) (Resealed, error) {
	var done Resealed
	q := sys.Queries()
	if !stagedOnly {
		for after := int64(0); ; {
			rows, err := q.ChannelSecretsList(ctx, dbsqlc.ChannelSecretsListParams{AfterID: after, MaxRows: resealBatch})
			if err != nil {
				return done, fmt.Errorf("read channel secrets: %w", err)
			}
			for _, r := range rows {
				after = r.ID
				if id, _ := KeyID(r.Secrets); id == keys.PrimaryID() {
					continue
				}
				ctxFor := For(ChannelsColumn, r.TenantID)
				plain, err := keys.Open(r.Secrets, ctxFor)
				if err != nil {
					return done, fmt.Errorf("channel %d: %w", r.ID, err)
				}
				sealed, err := keys.Seal(plain, ctxFor)
				if err != nil {
					return done, err
				}
				n, err := q.ChannelSecretsSet(ctx, dbsqlc.ChannelSecretsSetParams{ID: r.ID, Secrets: sealed, OldSecrets: r.Secrets})
				if err != nil {
					return done, fmt.Errorf("channel %d: %w", r.ID, err)
				}
				done.Channels += int(n)
			}
			if len(rows) < resealBatch {
				break
			}
		}
	}
	if !stagedOnly {
		for after := int64(0); ; {
			rows, err := q.TrapCredentialSecretsList(ctx, dbsqlc.TrapCredentialSecretsListParams{AfterID: after, MaxRows: resealBatch})
			if err != nil {
				return done, fmt.Errorf("read trap credential secrets: %w", err)
			}
			for _, r := range rows {
				after = r.ID
				if id, _ := KeyID(r.Secrets); id == keys.PrimaryID() {
					continue
				}
				ctxFor := For(TrapCredentialsColumn, r.TenantID)
				plain, err := keys.Open(r.Secrets, ctxFor)
				if err != nil {
					return done, fmt.Errorf("trap credential %d: %w", r.ID, err)
				}
				sealed, err := keys.Seal(plain, ctxFor)
				if err != nil {
					return done, err
				}
				n, err := q.TrapCredentialSecretsSet(ctx, dbsqlc.TrapCredentialSecretsSetParams{ID: r.ID, Secrets: sealed, OldSecrets: r.Secrets})
				if err != nil {
					return done, fmt.Errorf("trap credential %d: %w", r.ID, err)
				}
				done.TrapCredentials += int(n)
			}
			if len(rows) < resealBatch {
				break
			}
		}
	}
	for after := int64(0); ; {
		rows, err := q.CheckSecretsList(ctx, dbsqlc.CheckSecretsListParams{AfterID: after, OnlyStaged: stagedOnly, MaxRows: resealBatch})
		if err != nil {
			return done, fmt.Errorf("read check secrets: %w", err)
		}
		for _, r := range rows {
			after = r.ID
			if id, _ := KeyID(r.Secrets); r.SecretsStaging == nil && id == keys.PrimaryID() {
				continue
			}
			ctxFor := For(ChecksColumn, r.TenantID)
			plain := []byte("{}")
			if len(r.Secrets) > 0 {
				if plain, err = keys.Open(r.Secrets, ctxFor); err != nil {
					return done, fmt.Errorf("check %d: %w", r.ID, err)
				}
			}
			if r.SecretsStaging != nil {
				if plain, err = Join(plain, r.SecretsStaging); err != nil {
					return done, fmt.Errorf("check %d: %w", r.ID, err)
				}
			}
			sealed, err := keys.Seal(plain, ctxFor)
			if err != nil {
				return done, err
			}
			n, err := q.CheckSecretsSet(ctx, dbsqlc.CheckSecretsSetParams{ID: r.ID, Secrets: sealed, OldSecrets: r.Secrets,
				OldStaging: r.SecretsStaging})
			if err != nil {
				return done, fmt.Errorf("check %d: %w", r.ID, err)
			}
			done.Checks += int(n)
		}
		if len(rows) < resealBatch {
			break
		}
	}
	return done, nil
}

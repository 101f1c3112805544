-- name: SigningKeyListUsable :many
-- Every key that still verifies: not retired, or retiring only later. Newest first, so the first row is
-- the one that signs.
SELECT kid, private_key, created_at, retired_at
  FROM infrawatch.signing_keys
 WHERE retired_at IS NULL OR retired_at > now()
 ORDER BY created_at DESC, kid DESC;

-- name: SigningKeyCreate :one
-- System work: runs as the owner. The seed is the 32-byte Ed25519 private key seed.
INSERT INTO infrawatch.signing_keys (kid, algorithm, private_key)
VALUES (@kid, 'EdDSA', @private_key)
RETURNING kid, created_at;

-- name: SigningKeyLock :exec
-- A transaction-level advisory lock that serializes creating the first key, so replicas starting at the
-- same moment on an empty table end up with one key, not one each.
SELECT pg_advisory_xact_lock(@lock_key::bigint);

-- name: SigningKeyRetire :execrows
-- Stops a key verifying from @retired_at on; tokens it signed are refused once that time has passed and
-- every replica has reloaded its keys.
UPDATE infrawatch.signing_keys
   SET retired_at = @retired_at
 WHERE kid = @kid;

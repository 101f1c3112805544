-- name: BiSettingsEnsure :one
-- System work: a tenant's BI limits, made with the defaults the first time, and locked until the
-- transaction ends, so that two logins made at once count each other.
INSERT INTO app.bi_settings (tenant_id) VALUES (@tenant_id)
    ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = excluded.tenant_id
RETURNING *;

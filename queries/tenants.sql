-- name: TenantCreate :one
-- System work: runs as the owner, never through the tenant runner.
INSERT INTO app.tenants (slug, name)
VALUES (@slug, @name)
RETURNING *;

-- name: TenantGetByID :one
SELECT * FROM app.tenants WHERE id = @id;

-- name: TenantGetBySlug :one
SELECT * FROM app.tenants WHERE slug = @slug;

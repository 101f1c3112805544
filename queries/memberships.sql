-- name: MembershipCreate :one
INSERT INTO app.memberships (tenant_id, user_id, role)
VALUES (@tenant_id, @user_id, @role)
RETURNING *;

-- name: MembershipListByUser :many
SELECT * FROM app.memberships WHERE user_id = @user_id ORDER BY created_at;

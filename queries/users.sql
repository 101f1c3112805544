-- name: UserCreate :one
-- System work: users are global, so creating one runs as the owner.
INSERT INTO app.users (email, name, password_hash)
VALUES (@email, @name, @password_hash)
RETURNING *;

-- name: UserGetByEmail :one
SELECT * FROM app.users WHERE lower(email) = lower(@email);

-- name: UserGetByID :one
SELECT * FROM app.users WHERE id = @id;

-- name: UserSetPassword :exec
UPDATE app.users SET password_hash = @password_hash, updated_at = now() WHERE id = @id;

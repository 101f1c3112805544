-- name: UserCreate :one
-- System work: accounts are global. Only the person who will hold the password creates one (accepting an
-- invitation), or the operator (a new tenant's owner), so an account always starts with a password.
INSERT INTO app.users (email, name, password_hash)
VALUES (@email, @name, @password_hash::text)
RETURNING *;

-- name: UserGetByEmail :one
SELECT * FROM app.users WHERE lower(email) = lower(@email);

-- name: UserGetByID :one
SELECT * FROM app.users WHERE id = @id;

-- name: UserSetPassword :exec
UPDATE app.users SET password_hash = @password_hash, updated_at = now() WHERE id = @id;

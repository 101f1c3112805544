// Package migrations holds the SQL migrations of the infrawatch schema, embedded in the binary.
//
// The files are the single source of truth for the schema: golang-migrate applies them and sqlc reads
// them. Each migration reads the storage flavor from infrawatch.flavor() and must build the same relation
// names and columns in both flavors.
package migrations

import "embed"

// FS holds every NNNNNN_name.up.sql and .down.sql file.
//
//go:embed *.sql
var FS embed.FS

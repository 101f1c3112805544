// Package sql holds hand-written SQL that is neither a migration nor a sqlc query: scripts an operator
// can also run with psql. Tests embed them so that the script CI runs is the one operators get.
package sql

import _ "embed"

// IsolationAudit lists every hole in tenant isolation, one row each; an empty result is a pass.
//
//go:embed isolation_audit.sql
var IsolationAudit string

// BIExamples are the analyst queries of sql/bi/examples.sql, each after a "-- name:" line; a test runs
// every one as a BI login.
//
//go:embed bi/examples.sql
var BIExamples string

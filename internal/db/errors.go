package db

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors that callers test for with errors.Is, whatever the driver said.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflicts with an existing record")
	ErrInvalid   = errors.New("violates a constraint")
	ErrForbidden = errors.New("not permitted")
	ErrNoTenant  = errors.New("no tenant given")
	// ErrTimeout: a statement ran past its statement_timeout (or was cancelled), or its deadline passed.
	ErrTimeout = errors.New("statement timed out")
	// ErrLocked: a lock another session holds could not be taken without waiting (lock_not_available),
	// e.g. a continuous aggregate that another session is refreshing. Trying again later may succeed.
	ErrLocked = errors.New("locked by another session")
)

// Error is a translated database error: Kind is one of the Err values above, Err the driver's error.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Err.Error() }

// Is makes errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

// Translate maps driver errors to the package's error kinds; others pass through unchanged.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if _, done := errors.AsType[*Error](err); done {
		return err // translated already
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{Kind: ErrNotFound, Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: ErrTimeout, Err: err}
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23505": // unique_violation
		return &Error{Kind: ErrConflict, Err: err}
	case "23503": // foreign_key_violation: the referenced row does not exist (for this tenant)
		return &Error{Kind: ErrNotFound, Err: err}
	case "23502", "23514", "22001", "22P02", "22023": // not null, check, too long, bad text, bad parameter
		return &Error{Kind: ErrInvalid, Err: err}
	case "42501": // insufficient_privilege, including row-level security WITH CHECK failures
		return &Error{Kind: ErrForbidden, Err: err}
	case "55P03": // lock_not_available
		return &Error{Kind: ErrLocked, Err: err}
	case "57014": // query_canceled: statement_timeout, or a cancel request (pgx sends one when ctx ends)
		return &Error{Kind: ErrTimeout, Err: err}
	}
	return err
}

// Passwords as they appear in connection URLs (user:secret@) and keyword/value strings (password=secret).
var (
	passwordInText    = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
	passwordInKeyword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)
)

// RedactURL returns a connection URL with its password replaced, fit for logs and error messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return redactText(raw)
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Redact hides any password of a connection URL quoted inside err's message.
func Redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := redactText(msg)
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

func redactText(s string) string {
	s = passwordInText.ReplaceAllString(s, "${1}xxxxx@")
	return passwordInKeyword.ReplaceAllString(s, "${1}xxxxx")
}

// IsUnavailable tells a database that cannot serve now — down, restarting, out of connections, a
// read-only standby, too slow — from a statement that is wrong. Callers answer the first with 503 and
// Retry-After, so clients come back. A session cut mid-statement (the server stopped in immediate mode,
// or crashed) ends in the driver's io.ErrUnexpectedEOF: unavailable too. So does a session the server
// ended because its transaction sat idle too long (the process was paused or starved): nothing was
// written, and the same statement succeeds on a new session.
func IsUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		switch pgErr.Code {
		case "25006", // read_only_sql_transaction
			"25P03": // idle_in_transaction_session_timeout
			return true
		}
		return false
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

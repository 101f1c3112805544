package db

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestRedactHidesPasswords(t *testing.T) {
	cases := []string{
		"postgres://owner:s3cr3t@db.example:5432/infrawatch?sslmode=require",
		"host=db user=owner password=s3cr3t dbname=infrawatch",
		"host=db user=owner password='s3 cr3t' dbname=infrawatch",
		"cannot parse `postgres://owner:s3cr3t@db:5432/x`: failed",
	}
	for _, c := range cases {
		if got := RedactURL(c); strings.Contains(got, "s3cr3t") || strings.Contains(got, "cr3t") {
			t.Errorf("RedactURL(%q) = %q", c, got)
		}
		if got := Redact(errors.New(c)).Error(); strings.Contains(got, "cr3t") {
			t.Errorf("Redact(%q) = %q", c, got)
		}
	}
	if got := RedactURL("postgres://owner@db/x"); got != "postgres://owner@db/x" {
		t.Errorf("a URL without a password changed: %q", got)
	}
}

func TestTranslate(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{pgx.ErrNoRows, ErrNotFound},
		{&pgconn.PgError{Code: "23505"}, ErrConflict},
		{&pgconn.PgError{Code: "23503"}, ErrNotFound},
		{&pgconn.PgError{Code: "23514"}, ErrInvalid},
		{&pgconn.PgError{Code: "42501"}, ErrForbidden},
		{&pgconn.PgError{Code: "55P03"}, ErrLocked},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "23505"}), ErrConflict},
	}
	for _, c := range cases {
		got := Translate(c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("Translate(%v) = %v, want %v", c.err, got, c.want)
		}
		if !errors.Is(got, c.err) && !errors.Is(got, errors.Unwrap(c.err)) {
			t.Errorf("Translate(%v) lost the original error", c.err)
		}
	}
	if other := errors.New("other"); Translate(other) != other {
		t.Error("an unrelated error changed")
	}
}

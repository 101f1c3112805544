package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// BIConnection is where BI tools connect: the server's --bi-public-dsn.
type BIConnection struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Database string `json:"database"`
	SSLMode  string `json:"sslmode"`
}

// BICredential is a BI login as lists show it: never its password.
type BICredential struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Login is the user name to log in with.
	Login string `json:"login"`
	// Connection is null when the server does not offer BI access (no --bi-public-dsn).
	Connection                 *BIConnection `json:"connection"`
	StatementTimeoutMS         int64         `json:"statement_timeout_ms"`
	IdleInTransactionTimeoutMS int64         `json:"idle_in_transaction_timeout_ms"`
	ConnectionLimit            int           `json:"connection_limit"`
	CreatedBy                  *uuid.UUID    `json:"created_by"`
	CreatedAt                  time.Time     `json:"created_at"`
	RotatedAt                  *time.Time    `json:"rotated_at"`
}

// IssuedBICredential adds the password, shown this once, and a connection URL that carries it.
type IssuedBICredential struct {
	BICredential
	Password string `json:"password"`
	DSN      string `json:"dsn"`
}

type biCredentialInput struct {
	Name string `json:"name"`
}

func (s *server) biConnection() *BIConnection {
	if s.bi == nil {
		return nil
	}
	ep, ok := s.bi.Endpoint()
	if !ok {
		return nil
	}
	return &BIConnection{Host: ep.Host, Port: ep.Port, Database: ep.Database, SSLMode: ep.SSLMode}
}

func biCredentialOut(conn *BIConnection, id int64, name, login string, createdBy *uuid.UUID, createdAt time.Time,
	rotatedAt *time.Time, limits bi.Limits) BICredential {
	return BICredential{ID: id, Name: name, Login: login, Connection: conn,
		StatementTimeoutMS: limits.StatementTimeout.Milliseconds(), IdleInTransactionTimeoutMS: limits.IdleInTransactionTimeout.Milliseconds(),
		ConnectionLimit: limits.ConnectionLimit, CreatedBy: createdBy, CreatedAt: createdAt, RotatedAt: rotatedAt}
}

func issuedOut(c bi.Issued) IssuedBICredential {
	ep := c.Endpoint
	conn := &BIConnection{Host: ep.Host, Port: ep.Port, Database: ep.Database, SSLMode: ep.SSLMode}
	return IssuedBICredential{
		BICredential: biCredentialOut(conn, c.ID, c.Name, c.Login, c.CreatedBy, c.CreatedAt, c.RotatedAt, c.Limits),
		Password:     c.Password, DSN: ep.URL(c.Login, c.Password)}
}

// biActor is the caller, for the audit entry of a change.
func biActor(c *gin.Context) bi.Actor {
	p := principal(c)
	return bi.Actor{Kind: string(p.Kind), ID: p.ActorID(), UserID: p.CreatedBy()}
}

func (s *server) listBICredentials(c *gin.Context) {
	conn := s.biConnection()
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.BiCredentialListRow, error) {
		return q.BiCredentialList(c.Request.Context(), dbsqlc.BiCredentialListParams{AfterID: after, MaxRows: limit})
	}, func(r dbsqlc.BiCredentialListRow) BICredential {
		return biCredentialOut(conn, r.ID, r.Name, r.Login, r.CreatedBy, r.CreatedAt, r.RotatedAt,
			bi.Limits{StatementTimeout: r.StatementTimeout, IdleInTransactionTimeout: r.IdleInTransactionTimeout, ConnectionLimit: int(r.ConnectionLimit)})
	}, func(b BICredential) int64 { return b.ID })
}

func (s *server) getBICredential(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var r dbsqlc.BiCredentialGetRow
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		r, err = q.BiCredentialGet(c.Request.Context(), id)
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, biCredentialOut(s.biConnection(), r.ID, r.Name, r.Login, r.CreatedBy, r.CreatedAt, r.RotatedAt,
		bi.Limits{StatementTimeout: r.StatementTimeout, IdleInTransactionTimeout: r.IdleInTransactionTimeout, ConnectionLimit: int(r.ConnectionLimit)}))
}

func (s *server) createBICredential(c *gin.Context) {
	var in biCredentialInput
	if !decodeBody(c, &in) {
		return
	}
	if s.bi == nil {
		s.answerBIError(c, bi.ErrNotConfigured)
		return
	}
	issued, err := s.bi.Create(c.Request.Context(), principal(c).TenantID, in.Name, biActor(c))
	if err != nil {
		s.answerBIError(c, err)
		return
	}
	c.JSON(http.StatusCreated, issuedOut(issued))
}

func (s *server) rotateBICredential(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if s.bi == nil {
		s.answerBIError(c, bi.ErrNotConfigured)
		return
	}
	issued, err := s.bi.Rotate(c.Request.Context(), principal(c).TenantID, id, biActor(c))
	if err != nil {
		s.answerBIError(c, err)
		return
	}
	c.JSON(http.StatusOK, issuedOut(issued))
}

func (s *server) revokeBICredential(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if s.bi == nil {
		s.answerBIError(c, bi.ErrNotConfigured)
		return
	}
	if err := s.bi.Revoke(c.Request.Context(), principal(c).TenantID, id, biActor(c)); err != nil {
		s.answerBIError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// answerBIError answers the refusals of the BI service; others as every error.
func (s *server) answerBIError(c *gin.Context, err error) {
	var invalid *bi.InvalidError
	var tooMany *bi.TooManyError
	switch {
	case errors.As(err, &invalid):
		writeValidation(c, fieldErrors{{Field: invalid.Field, Message: invalid.Msg}})
	case errors.As(err, &tooMany):
		writeProblem(c, http.StatusConflict, "too many BI credentials", tooMany.Error())
	case errors.Is(err, bi.ErrNotConfigured):
		writeProblem(c, http.StatusServiceUnavailable, "BI access is off",
			"this server offers no BI access: its operator has not set --bi-public-dsn")
	case errors.Is(err, bi.ErrTemporaryAllowed):
		// The operator's to fix; the tenant learns that BI access is unavailable, the log says why.
		s.log.Error("BI credential refused", "request_id", c.GetString(requestIDKey), "err", err)
		writeProblem(c, http.StatusServiceUnavailable, "BI access unavailable",
			"the database is not yet set up for BI logins; quote the request id to the operator")
	default:
		s.answerError(c, err)
	}
}

// lookupBICredential finds the BI credential of the path's :id, for requireOn.
var lookupBICredential = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
	_, err := q.BiCredentialGet(c.Request.Context(), id)
	return err
})

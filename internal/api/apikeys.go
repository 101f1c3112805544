package api

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// APIKey is an API key as lists show it: never its secret.
type APIKey struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// CreatedAPIKey adds the full key, shown this once.
type CreatedAPIKey struct {
	APIKey
	Key string `json:"key"`
}

func apiKeyOut(k dbsqlc.AppAPIKey) APIKey {
	return APIKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
		LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

type scopedInput struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func (in scopedInput) validate(c *gin.Context, withExpiry bool) fieldErrors {
	var errs fieldErrors
	if len(in.Name) < 1 || len(in.Name) > 200 {
		errs.add("name", "must be 1 to 200 characters")
	}
	if len(in.Scopes) == 0 {
		errs.add("scopes", "name at least one of ingest, read, write, admin")
	}
	for _, sc := range in.Scopes {
		if !auth.ValidScope(sc) {
			errs.add("scopes", "%q is not a scope; use ingest, read, write or admin", sc)
		} else if !principal(c).CanGrant(sc) {
			errs.add("scopes", "%q grants more than this credential holds", sc)
		}
	}
	if !withExpiry && in.ExpiresAt != nil {
		errs.add("expires_at", "is not a field of this resource")
	}
	if in.ExpiresAt != nil && in.ExpiresAt.Before(time.Now()) {
		errs.add("expires_at", "must be in the future")
	}
	return errs
}

func (s *server) listAPIKeys(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppAPIKey, error) {
		return q.APIKeyList(c.Request.Context(), dbsqlc.APIKeyListParams{AfterID: after, MaxRows: limit})
	}, apiKeyOut, func(k APIKey) int64 { return k.ID })
}

func (s *server) createAPIKey(c *gin.Context) {
	var in scopedInput
	if !decodeBody(c, &in) {
		return
	}
	if errs := in.validate(c, true); len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	key, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		s.internalError(c, err)
		return
	}
	slices.Sort(in.Scopes)
	var k dbsqlc.AppAPIKey
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		k, err = q.APIKeyCreate(c.Request.Context(), dbsqlc.APIKeyCreateParams{Name: in.Name, Prefix: prefix, SecretHash: hash,
			Scopes: slices.Compact(in.Scopes), CreatedBy: principal(c).CreatedBy(), ExpiresAt: in.ExpiresAt})
		if err != nil {
			return err
		}
		return record(c, q, "api_key.create", "api_key", strconv.FormatInt(k.ID, 10), gin.H{"name": k.Name, "scopes": k.Scopes})
	}) {
		return
	}
	c.JSON(http.StatusCreated, CreatedAPIKey{APIKey: apiKeyOut(k), Key: key})
}

func (s *server) revokeAPIKey(c *gin.Context) {
	s.removeByID(c, "api_key.revoke", "api_key", func(q *dbsqlc.Queries, id int64) error {
		_, err := q.APIKeyRevoke(c.Request.Context(), id)
		return err
	})
}

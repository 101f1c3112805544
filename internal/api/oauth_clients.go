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

// OAuthClient is an integration that obtains tokens with the client credentials grant.
type OAuthClient struct {
	ID        int64      `json:"id"`
	ClientID  string     `json:"client_id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// CreatedOAuthClient adds the secret, shown this once.
type CreatedOAuthClient struct {
	OAuthClient
	ClientSecret string `json:"client_secret"`
}

func oauthClientOut(o dbsqlc.AppOAuthClient) OAuthClient {
	return OAuthClient{ID: o.ID, ClientID: o.ClientID, Name: o.Name, Scopes: o.Scopes, CreatedAt: o.CreatedAt, RevokedAt: o.RevokedAt}
}

func (s *server) listOAuthClients(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppOAuthClient, error) {
		return q.OAuthClientList(c.Request.Context(), dbsqlc.OAuthClientListParams{AfterID: after, MaxRows: limit})
	}, oauthClientOut, func(o OAuthClient) int64 { return o.ID })
}

func (s *server) createOAuthClient(c *gin.Context) {
	var in scopedInput
	if !decodeBody(c, &in) {
		return
	}
	if errs := in.validate(c, false); len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	clientID, secret, hash, err := auth.NewClientCredentials()
	if err != nil {
		s.internalError(c, err)
		return
	}
	slices.Sort(in.Scopes)
	var o dbsqlc.AppOAuthClient
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		o, err = q.OAuthClientCreate(c.Request.Context(), dbsqlc.OAuthClientCreateParams{ClientID: clientID, Name: in.Name,
			SecretHash: hash, Scopes: slices.Compact(in.Scopes), CreatedBy: principal(c).CreatedBy()})
		if err != nil {
			return err
		}
		return record(c, q, "oauth_client.create", "oauth_client", strconv.FormatInt(o.ID, 10), gin.H{"name": o.Name, "scopes": o.Scopes})
	}) {
		return
	}
	c.JSON(http.StatusCreated, CreatedOAuthClient{OAuthClient: oauthClientOut(o), ClientSecret: secret})
}

func (s *server) revokeOAuthClient(c *gin.Context) {
	s.removeByID(c, "oauth_client.revoke", "oauth_client", func(q *dbsqlc.Queries, id int64) error {
		_, err := q.OAuthClientRevoke(c.Request.Context(), id)
		return err
	})
}

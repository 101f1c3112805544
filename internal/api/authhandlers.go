package api

import (
	"cmp"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/ingest"
)

type loginInput struct {
	Email    string     `json:"email"`
	Password string     `json:"password"`
	TenantID *uuid.UUID `json:"tenant_id"`
}

func (s *server) login(c *gin.Context) {
	var in loginInput
	if !decodeBody(c, &in) {
		return
	}
	if !s.limits.allowLogin(c, in.Email) {
		return
	}
	pair, err := s.auth.Login(c.Request.Context(), in.Email, in.Password, in.TenantID)
	if err != nil {
		s.answerAuthError(c, err)
		return
	}
	c.JSON(http.StatusOK, pair)
}

type refreshInput struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *server) refresh(c *gin.Context) {
	var in refreshInput
	if !decodeBody(c, &in) {
		return
	}
	if !s.limits.allowLogin(c, in.RefreshToken) {
		return
	}
	pair, err := s.auth.Refresh(c.Request.Context(), in.RefreshToken)
	if err != nil {
		s.answerAuthError(c, err)
		return
	}
	c.JSON(http.StatusOK, pair)
}

func (s *server) logout(c *gin.Context) {
	var in refreshInput
	if !decodeBody(c, &in) {
		return
	}
	if err := s.auth.Logout(c.Request.Context(), in.RefreshToken); err != nil {
		s.internalError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type acceptInviteInput struct {
	Token    string `json:"token"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// acceptInvite joins the invitation's tenant: as the logged-in user when the request carries a user's
// access token, else with the password of the email's account, or of the account it creates.
func (s *server) acceptInvite(c *gin.Context) {
	var in acceptInviteInput
	if !decodeBody(c, &in) {
		return
	}
	if !s.limits.allowLogin(c, in.Token) {
		return
	}
	a := auth.Acceptance{Token: in.Token, Password: in.Password, Name: in.Name}
	if c.GetHeader("Authorization") != "" {
		cred, _ := bearer(c)
		p, err := s.auth.Authenticate(c.Request.Context(), cred)
		if err != nil || p.Kind != auth.ActorUser {
			s.answerAuthError(c, auth.ErrUnauthenticated)
			return
		}
		if in.Password != "" {
			writeValidation(c, fieldErrors{{Field: "password", Message: "leave it out when accepting as the logged-in user"}})
			return
		}
		a.AsUser = &p.UserID
	}
	if len([]rune(in.Name)) > 200 {
		writeValidation(c, fieldErrors{{Field: "name", Message: "must be text of at most 200 characters"}})
		return
	}
	accepted, err := s.auth.AcceptInvite(c.Request.Context(), a)
	if errors.Is(err, auth.ErrAlreadyMember) {
		writeProblem(c, http.StatusConflict, "already a member", "this account is a member of the tenant already")
		return
	} else if err != nil {
		s.answerAuthError(c, err)
		return
	}
	c.JSON(http.StatusOK, accepted)
}

type changePasswordInput struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword changes the calling user's own password and ends their other sessions.
func (s *server) changePassword(c *gin.Context) {
	p := principal(c)
	if p.Kind != auth.ActorUser {
		writeProblem(c, http.StatusForbidden, "forbidden", "only a user can change a password")
		return
	}
	var in changePasswordInput
	if !decodeBody(c, &in) {
		return
	}
	if !s.limits.allowLogin(c, p.UserID.String()) {
		return
	}
	if err := s.auth.ChangePassword(c.Request.Context(), p.UserID, in.CurrentPassword, in.NewPassword); err != nil {
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			writeValidation(c, fieldErrors{{Field: "current_password", Message: "is not the current password"}})
		case errors.Is(err, auth.ErrWeakPassword):
			writeValidation(c, fieldErrors{{Field: "new_password", Message: err.Error()}})
		default:
			s.answerAuthError(c, err)
		}
		return
	}
	c.Status(http.StatusNoContent)
}

// listMyTenants lists the tenants the calling user may switch to (GET /api/v1/auth/tenants).
func (s *server) listMyTenants(c *gin.Context) {
	p := principal(c)
	if p.Kind != auth.ActorUser {
		writeProblem(c, http.StatusForbidden, "forbidden", "only a user's access token has tenants to list")
		return
	}
	tenants, err := s.auth.Tenants(c.Request.Context(), p.UserID, p.TenantID)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": tenants})
}

type switchInput struct {
	TenantID *uuid.UUID `json:"tenant_id"`
}

// switchTenant issues the calling user a token pair for another of their tenants (POST
// /api/v1/auth/switch). The session the request comes from stays valid: the caller logs it out.
func (s *server) switchTenant(c *gin.Context) {
	p := principal(c)
	if p.Kind != auth.ActorUser {
		writeProblem(c, http.StatusForbidden, "forbidden", "only a user's access token can switch tenants")
		return
	}
	var in switchInput
	if !decodeBody(c, &in) {
		return
	}
	if in.TenantID == nil {
		writeValidation(c, fieldErrors{{Field: "tenant_id", Message: "is required"}})
		return
	}
	pair, err := s.auth.Switch(c.Request.Context(), p.UserID, *in.TenantID)
	if errors.Is(err, auth.ErrNotMember) {
		writeProblem(c, http.StatusNotFound, "not found", "no tenant of yours has this id")
		return
	} else if err != nil {
		s.answerAuthError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, pair)
}

func (s *server) answerAuthError(c *gin.Context, err error) {
	var choice *auth.TenantChoiceError
	switch {
	case errors.As(err, &choice):
		// Only Login returns it, and only after the password was verified.
		p := newProblem(c, http.StatusBadRequest, "invalid request", "one or more fields are invalid; see errors")
		p.Errors = fieldErrors{{Field: "tenant_id", Message: "you belong to several tenants; say which (see tenants)"}}
		p.Tenants = orEmpty(choice.Tenants)
		sendProblem(c, p)
	case errors.Is(err, auth.ErrUnauthenticated):
		writeProblem(c, http.StatusUnauthorized, "unauthenticated", "the credentials are wrong, expired or revoked")
	case errors.Is(err, auth.ErrSuspended):
		writeProblem(c, http.StatusForbidden, "tenant suspended", "this tenant is suspended; contact the operator")
	case errors.Is(err, auth.ErrTenantChoice):
		writeValidation(c, fieldErrors{{Field: "tenant_id", Message: "you belong to several tenants; say which"}})
	case errors.Is(err, auth.ErrWeakPassword):
		writeValidation(c, fieldErrors{{Field: "password", Message: err.Error()}})
	default:
		s.answerError(c, err)
	}
}

// oauthToken is the OAuth2 token endpoint (RFC 6749): client_credentials and refresh_token grants, a
// form-encoded body, client authentication by HTTP Basic or client_id/client_secret in the body. Its
// errors use RFC 6749's JSON shape, which OAuth client libraries expect, rather than problem+json.
func (s *server) oauthToken(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)
	if !strings.HasPrefix(c.ContentType(), "application/x-www-form-urlencoded") {
		oauthError(c, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	for _, field := range []string{"grant_type", "client_id", "client_secret", "scope", "refresh_token"} {
		if why := ingest.CheckText(c.PostForm(field)); why != "" {
			oauthError(c, http.StatusBadRequest, "invalid_request", field+" "+why)
			return
		}
	}
	switch c.PostForm("grant_type") {
	case "client_credentials":
		id, secret, ok := c.Request.BasicAuth()
		if !ok {
			id, secret = c.PostForm("client_id"), c.PostForm("client_secret")
		}
		if id == "" || secret == "" {
			oauthError(c, http.StatusUnauthorized, "invalid_client", "client authentication is required")
			return
		}
		if why := cmp.Or(ingest.CheckText(id), ingest.CheckText(secret)); why != "" {
			oauthError(c, http.StatusBadRequest, "invalid_request", "the client credentials: "+why)
			return
		}
		if !s.limits.allowLogin(c, id) {
			return
		}
		pair, err := s.auth.ClientCredentials(c.Request.Context(), id, secret, strings.Fields(c.PostForm("scope")))
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			oauthError(c, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		case errors.Is(err, auth.ErrScope):
			oauthError(c, http.StatusBadRequest, "invalid_scope", err.Error())
		case errors.Is(err, auth.ErrSuspended):
			oauthError(c, http.StatusBadRequest, "unauthorized_client", "the tenant is suspended")
		case err != nil:
			s.internalError(c, err)
		default:
			c.JSON(http.StatusOK, pair)
		}
	case "refresh_token":
		if !s.limits.allowLogin(c, c.PostForm("refresh_token")) {
			return
		}
		pair, err := s.auth.Refresh(c.Request.Context(), c.PostForm("refresh_token"))
		switch {
		case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrSuspended):
			oauthError(c, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired, revoked or reused")
		case err != nil:
			s.internalError(c, err)
		default:
			c.JSON(http.StatusOK, pair)
		}
	case "":
		oauthError(c, http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		oauthError(c, http.StatusBadRequest, "unsupported_grant_type", "use client_credentials or refresh_token")
	}
}

func oauthError(c *gin.Context, status int, code, description string) {
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Basic realm="infrawatch"`)
	}
	c.AbortWithStatusJSON(status, gin.H{"error": code, "error_description": description})
}

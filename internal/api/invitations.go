package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Invitation is an offer of membership in the tenant to an email. It says nothing about whether that
// email has an account anywhere: see auth.Invite.
type Invitation struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Name      string    `json:"name"`
	Status    string    `json:"status"` // pending, accepted, revoked or expired
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreatedInvitation adds the invitation token, shown this once.
type CreatedInvitation struct {
	Invitation
	InviteToken string `json:"invite_token"`
}

func invitationOut(inv dbsqlc.AppInvitation) Invitation {
	return Invitation{ID: inv.ID, Email: inv.Email, Role: inv.Role, Name: inv.Name, Status: auth.InvitationStatus(inv, time.Now()),
		CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt}
}

// inviteInput adds a person to the tenant. Password is here only to be refused by name: nobody but the
// person who will hold an account's password ever chooses it.
type inviteInput struct {
	Email    string  `json:"email"`
	Name     string  `json:"name"`
	Role     string  `json:"role"`
	Password *string `json:"password"`
}

// invite answers POST /users: a pending invitation and its token, never an account. The answer has the
// same shape whatever exists outside the tenant.
func (s *server) invite(c *gin.Context) {
	var in inviteInput
	if !decodeBody(c, &in) {
		return
	}
	var errs fieldErrors
	if !strings.Contains(in.Email, "@") || len(in.Email) > 254 {
		errs.add("email", "must be an email address")
	}
	if len([]rune(in.Name)) > 200 {
		errs.add("name", "must be text of at most 200 characters")
	}
	if !auth.ValidRole(in.Role) {
		errs.add("role", "must be one of viewer, editor, admin, owner")
	}
	if in.Password != nil {
		errs.add("password", "admins cannot set passwords; the person invited sets theirs when accepting the invitation")
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	if !principal(c).CanGrantRole(in.Role) {
		writeProblem(c, http.StatusForbidden, "forbidden", "the role "+in.Role+" grants more than this credential holds")
		return
	}
	var inv dbsqlc.AppInvitation
	var token string
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		inv, token, err = auth.Invite(c.Request.Context(), q, principal(c), auth.NewInvitation{Email: in.Email, Role: in.Role, Name: in.Name})
		if errors.Is(err, auth.ErrAlreadyMember) {
			return &problemError{status: http.StatusConflict, title: "already a member", detail: "this email is a member of the tenant already"}
		} else if err != nil {
			return err
		}
		return record(c, q, "invitation.create", "invitation", strconv.FormatInt(inv.ID, 10), gin.H{"email": inv.Email, "role": inv.Role})
	}) {
		return
	}
	c.JSON(http.StatusCreated, CreatedInvitation{Invitation: invitationOut(inv), InviteToken: token})
}

func (s *server) listInvitations(c *gin.Context) {
	listByID(s, c, func(q *dbsqlc.Queries, after int64, limit int32) ([]dbsqlc.AppInvitation, error) {
		return q.InvitationList(c.Request.Context(), dbsqlc.InvitationListParams{AfterID: after, MaxRows: limit})
	}, invitationOut, func(i Invitation) int64 { return i.ID })
}

// revokeInvitation kills a pending invitation's token; an accepted, revoked or unknown one answers 404.
func (s *server) revokeInvitation(c *gin.Context) {
	s.removeByID(c, "invitation.revoke", "invitation", func(q *dbsqlc.Queries, id int64) error {
		return deleted(q.InvitationRevoke(c.Request.Context(), id))
	})
}

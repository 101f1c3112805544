package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/notify"
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

// CreatedInvitation adds the invitation token, shown this once — or, when the deployment emails
// invitations, says so and never shows it: then only the owner of the address sees the token.
type CreatedInvitation struct {
	Invitation
	InviteToken string `json:"invite_token,omitempty"`
	Emailed     bool   `json:"emailed"`
}

// InvitationMailer emails invitations when the deployment has an SMTP relay; the notify package's
// Sender is the one the process wires.
type InvitationMailer interface {
	// CanEmail says whether invitations are emailed.
	CanEmail() bool
	// SendInvitation emails the token to the person invited, and returns once the relay took it.
	SendInvitation(ctx context.Context, inv notify.Invitation) error
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

// invite answers POST /users: a pending invitation and its token, never an account. With an SMTP relay
// the token is emailed to the person invited and not answered. The answer has the same shape whatever
// exists outside the tenant.
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
	emailed := s.invitations != nil && s.invitations.CanEmail()
	if !s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		inv, token, err = auth.Invite(c.Request.Context(), q, principal(c), auth.NewInvitation{Email: in.Email, Role: in.Role, Name: in.Name})
		if errors.Is(err, auth.ErrAlreadyMember) {
			return &problemError{status: http.StatusConflict, title: "already a member", detail: "this email is a member of the tenant already"}
		} else if err != nil {
			return err
		}
		if err := record(c, q, "invitation.create", "invitation", strconv.FormatInt(inv.ID, 10),
			gin.H{"email": inv.Email, "role": inv.Role, "emailed": emailed}); err != nil {
			return err
		}
		if !emailed {
			return nil
		}
		// The email goes before the invitation is committed: an invitation the invitee cannot get is
		// not made.
		t, err := q.TenantGetCurrent(c.Request.Context())
		if err != nil {
			return err
		}
		if err := s.invitations.SendInvitation(c.Request.Context(), notify.Invitation{To: inv.Email, TenantName: t.Name,
			Role: inv.Role, Token: token, ExpiresAt: inv.ExpiresAt}); err != nil {
			s.log.Warn("email an invitation", "invitation", inv.ID, "err", err)
			return &problemError{status: http.StatusServiceUnavailable, title: "invitation not sent",
				detail: "the invitation could not be emailed, so none was made; try again later"}
		}
		return nil
	}) {
		return
	}
	out := CreatedInvitation{Invitation: invitationOut(inv), Emailed: emailed}
	if !emailed {
		out.InviteToken = token
	}
	c.JSON(http.StatusCreated, out)
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

package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// User is a member of the current tenant.
type User struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

func memberOut(m dbsqlc.MembershipGetMemberRow) User {
	return User{ID: m.ID, Email: m.Email, Name: m.Name, Role: m.Role, Disabled: m.DisabledAt != nil, CreatedAt: m.CreatedAt}
}

func pathUUID(c *gin.Context) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		writeProblem(c, http.StatusNotFound, "not found", "")
		return uuid.Nil, false
	}
	return id, true
}

func (s *server) listUsers(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	after, _ := uuid.Parse(cursor)
	var out []User
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		rows, err := q.MembershipListMembers(c.Request.Context(), dbsqlc.MembershipListMembersParams{AfterID: after, MaxRows: limit})
		for _, m := range rows {
			out = append(out, memberOut(dbsqlc.MembershipGetMemberRow(m)))
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(orEmpty(out), limit, func(u User) string { return u.ID.String() }))
}

func (s *server) getUser(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	var m dbsqlc.MembershipGetMemberRow
	if s.inTenant(c, func(q *dbsqlc.Queries) (err error) {
		m, err = q.MembershipGetMember(c.Request.Context(), id)
		return err
	}) {
		c.JSON(http.StatusOK, memberOut(m))
	}
}

type updateUserInput struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

func (s *server) updateUser(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	var in updateUserInput
	if !decodeBody(c, &in) {
		return
	}
	if in.Role != nil && !auth.ValidRole(*in.Role) {
		writeValidation(c, fieldErrors{{Field: "role", Message: "must be one of viewer, editor, admin, owner"}})
		return
	}
	var m dbsqlc.MembershipGetMemberRow
	if !s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		current, err := q.MembershipGetMember(ctx, id)
		if err != nil {
			return err
		}
		if err := s.guardOwners(c, q, current.Role, in.Role, in.Disabled != nil && *in.Disabled); err != nil {
			return err
		}
		if in.Role != nil && !principal(c).CanGrantRole(*in.Role) {
			return &problemError{status: http.StatusForbidden, title: "forbidden",
				detail: "the role " + *in.Role + " grants more than this credential holds"}
		}
		if _, err := q.MembershipUpdate(ctx, dbsqlc.MembershipUpdateParams{UserID: id, Role: in.Role, Disabled: in.Disabled}); err != nil {
			return err
		}
		if m, err = q.MembershipGetMember(ctx, id); err != nil {
			return err
		}
		return record(c, q, "user.update", "user", id.String(), in)
	}) {
		return
	}
	c.JSON(http.StatusOK, memberOut(m))
}

func (s *server) removeUser(c *gin.Context) {
	id, ok := pathUUID(c)
	if !ok {
		return
	}
	if s.inTenant(c, func(q *dbsqlc.Queries) error {
		ctx := c.Request.Context()
		current, err := q.MembershipGetMember(ctx, id)
		if err != nil {
			return err
		}
		if err := s.guardOwners(c, q, current.Role, nil, true); err != nil {
			return err
		}
		if _, err := q.MembershipDelete(ctx, id); err != nil {
			return err
		}
		return record(c, q, "user.remove", "user", id.String(), gin.H{"email": current.Email, "role": current.Role})
	}) {
		c.Status(http.StatusNoContent)
	}
}

// guardOwners keeps owners in charge of owners: only an owner changes an owner or makes one, and the
// last active owner cannot be demoted, disabled or removed.
func (s *server) guardOwners(c *gin.Context, q *dbsqlc.Queries, currentRole string, newRole *string, removing bool) error {
	touchesOwner := currentRole == "owner" || (newRole != nil && *newRole == "owner")
	if touchesOwner && !principal(c).Can(auth.PermTenant) {
		return &problemError{status: http.StatusForbidden, title: "forbidden", detail: "only an owner may change owners"}
	}
	losesOwner := currentRole == "owner" && (removing || (newRole != nil && *newRole != "owner"))
	if !losesOwner {
		return nil
	}
	n, err := q.MembershipCountActiveOwners(c.Request.Context()) // a count: always one row
	if err != nil {
		return err
	}
	if n <= 1 {
		return &problemError{status: http.StatusConflict, title: "last owner",
			detail: "a tenant keeps at least one active owner; make someone else owner first"}
	}
	return nil
}

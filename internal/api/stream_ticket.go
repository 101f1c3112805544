package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/auth"
)

const ticketKey = "stream_ticket"

// authenticateStream admits GET /api/v1/stream with a stream ticket (?ticket=iws_…), which it spends,
// or else with a credential in Authorization like every route. A ticket is the only credential a URL
// may carry, and only this route takes one.
func (s *server) authenticateStream() gin.HandlerFunc {
	byHeader := s.authenticate()
	return func(c *gin.Context) {
		ticket := c.Query("ticket")
		if ticket == "" {
			byHeader(c)
			return
		}
		p, err := s.auth.RedeemStreamTicket(c.Request.Context(), ticket)
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			writeProblem(c, http.StatusUnauthorized, "unauthenticated",
				"the stream ticket is unknown, spent or expired, or its user no longer belongs to the tenant; "+
					"ask POST /api/v1/stream/ticket for another (a ticket opens one stream, once)")
			return
		case errors.Is(err, auth.ErrSuspended):
			writeProblem(c, http.StatusForbidden, "tenant suspended", "this tenant is suspended; contact the operator")
			return
		case err != nil:
			s.answerError(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Set(ticketKey, true)
		c.Next()
	}
}

func openedWithTicket(c *gin.Context) bool { return c.GetBool(ticketKey) }

// createStreamTicket is POST /api/v1/stream/ticket: a ticket that opens the live stream once, within
// auth.StreamTicketTTL, for the caller's user in the caller's tenant. For users (a browser's session);
// API keys and OAuth clients send their credential to the stream itself.
func (s *server) createStreamTicket(c *gin.Context) {
	t, err := s.auth.NewStreamTicket(c.Request.Context(), principal(c))
	switch {
	case errors.Is(err, auth.ErrTicketForUsers):
		writeProblem(c, http.StatusForbidden, "forbidden",
			"stream tickets are for users' browser sessions; an API key or OAuth client sends its credential "+
				"to GET /api/v1/stream in the Authorization header")
		return
	case err != nil:
		s.answerError(c, err)
		return
	}
	c.JSON(http.StatusCreated, t)
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Stream tickets let a browser open the live stream: EventSource cannot send an Authorization header,
// and an access token in a URL would end up in logs and histories for its whole 15 minutes. A ticket
// is what goes in the URL instead (GET /api/v1/stream?ticket=iws_…): it is made for the user of an
// access token (POST /api/v1/stream/ticket), lives StreamTicketTTL, opens one stream once, and opens
// nothing else. Tickets are rows in app.stream_tickets, so any API replica may spend a ticket another
// made, and the single UPDATE that spends one lets exactly one request have it.

// StreamTicketTTL is how long a ticket may wait to be spent: long enough for a page to open its stream.
const StreamTicketTTL = 30 * time.Second

const streamTicketPrefix = "iws_"

// ErrTicketForUsers: a stream ticket was asked for with an API key or an OAuth client's token. Those
// clients send their credential in the Authorization header of the stream itself.
var ErrTicketForUsers = errors.New("stream tickets are for users")

// StreamTicket is a ticket as answered once to the user it was made for.
type StreamTicket struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NewStreamTicket makes a ticket for the user p, bound to p's tenant; the stream it opens ends when p's
// access token would have expired. The user's spent and expired tickets are deleted on the way.
func (s *Service) NewStreamTicket(ctx context.Context, p Principal) (StreamTicket, error) {
	if p.Kind != ActorUser {
		return StreamTicket{}, ErrTicketForUsers
	}
	ticket, hash, err := newOpaqueToken(streamTicketPrefix)
	if err != nil {
		return StreamTicket{}, err
	}
	expires := time.Now().Add(StreamTicketTTL)
	credentialExpires := p.ExpiresAt
	if credentialExpires.IsZero() {
		credentialExpires = expires // a user's access token always has an exp; a stream never outlives one
	}
	err = s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		if _, err := q.StreamTicketDeleteStale(ctx, p.UserID); err != nil {
			return err
		}
		return q.StreamTicketCreate(ctx, dbsqlc.StreamTicketCreateParams{TenantID: p.TenantID, UserID: p.UserID,
			SecretHash: hash, CredentialExpiresAt: credentialExpires, ExpiresAt: expires})
	})
	if err != nil {
		return StreamTicket{}, fmt.Errorf("store stream ticket: %w", err)
	}
	return StreamTicket{Ticket: ticket, ExpiresAt: expires.UTC().Truncate(time.Second)}, nil
}

// RedeemStreamTicket spends a ticket and answers the principal of its user in its tenant, with the
// role the user has now. A ticket unknown, spent or expired, or whose user no longer authenticates,
// is ErrUnauthenticated; ErrSuspended when the tenant is suspended.
func (s *Service) RedeemStreamTicket(ctx context.Context, ticket string) (Principal, error) {
	if !strings.HasPrefix(ticket, streamTicketPrefix) || len(ticket) > 200 {
		return Principal{}, ErrUnauthenticated
	}
	row, err := s.sys.Queries().StreamTicketRedeem(ctx, HashSecret(ticket))
	if errors.Is(err, db.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	} else if err != nil {
		return Principal{}, fmt.Errorf("redeem stream ticket: %w", err)
	}
	if !time.Now().Before(row.CredentialExpiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	return s.member(ctx, row.TenantID, row.UserID, row.CredentialExpiresAt)
}

// AuthenticateAgain re-reads a user principal from the database (a stream opened with a ticket
// re-checks its user this way, having no credential to present again): its current role, or
// ErrUnauthenticated, ErrSuspended as Authenticate answers them.
func (s *Service) AuthenticateAgain(ctx context.Context, p Principal) (Principal, error) {
	if p.Kind != ActorUser {
		return Principal{}, ErrUnauthenticated
	}
	return s.member(ctx, p.TenantID, p.UserID, p.ExpiresAt)
}

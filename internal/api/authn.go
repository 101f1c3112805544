package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

const principalKey = "principal"

// maxAuthorizationHeader bounds what is parsed of a credential; a megabyte of garbage is refused unread.
const maxAuthorizationHeader = 8 << 10

// bearer extracts the credential of "Authorization: Bearer …", "Token …" (what InfluxDB v2 clients such
// as Telegraf's influxdb_v2 output send), or the password of "Basic …" (InfluxDB v1 clients; the user
// name is ignored).
func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	if h == "" || len(h) > maxAuthorizationHeader {
		return "", false
	}
	if _, password, ok := c.Request.BasicAuth(); ok {
		return password, password != ""
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "Token")) {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// authenticate resolves the caller's credential to a principal, or answers 401/403.
func (s *server) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		cred, ok := bearer(c)
		if !ok {
			unauthorized(c)
			return
		}
		p, err := s.auth.Authenticate(c.Request.Context(), cred)
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			unauthorized(c)
			return
		case errors.Is(err, auth.ErrSuspended):
			writeProblem(c, http.StatusForbidden, "tenant suspended", "this tenant is suspended; contact the operator")
			return
		case err != nil:
			s.answerError(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// rateLimit bounds API requests per tenant and per credential. Pushes are not counted here: the
// ingest service limits them in samples per second, per tenant.
func (s *server) rateLimit() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.limits.allow(c, principal(c)) {
			c.Next()
		}
	}
}

func unauthorized(c *gin.Context) {
	c.Header("WWW-Authenticate", `Bearer realm="infrawatch"`)
	writeProblem(c, http.StatusUnauthorized, "unauthenticated",
		"send a valid access token or API key as Authorization: Bearer <credential>")
}

// require answers 403 unless the principal holds perm.
func require(perm auth.Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !principal(c).Can(perm) {
			forbidden(c, perm)
			return
		}
		c.Next()
	}
}

// requireOn guards a route on one object (the :id of the path). A caller lacking perm learns only what
// it may already see: 404 when the object is not its tenant's (or does not exist), 403 when it is.
func (s *server) requireOn(perm auth.Permission, lookup func(c *gin.Context, q *dbsqlc.Queries) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if principal(c).Can(perm) {
			c.Next()
			return
		}
		if s.inTenant(c, func(q *dbsqlc.Queries) error { return lookup(c, q) }) {
			forbidden(c, perm)
		}
	}
}

func forbidden(c *gin.Context, perm auth.Permission) {
	writeProblem(c, http.StatusForbidden, "forbidden", "this credential lacks the "+string(perm)+" permission")
}

// Lookups of the objects behind :id, for requireOn. An unparsable id is a missing object.
func lookupInt(get func(q *dbsqlc.Queries, c *gin.Context, id int64) error) func(*gin.Context, *dbsqlc.Queries) error {
	return func(c *gin.Context, q *dbsqlc.Queries) error {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil {
			return notFound()
		}
		return get(q, c, id)
	}
}

var (
	lookupHost = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.HostGetByID(c.Request.Context(), id)
		return err
	})
	lookupCheck = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.CheckGetByID(c.Request.Context(), id)
		return err
	})
	lookupAPIKey = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.APIKeyGetByID(c.Request.Context(), id)
		return err
	})
	lookupOAuthClient = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.OAuthClientGetByID(c.Request.Context(), id)
		return err
	})
	lookupInvitation = lookupInt(func(q *dbsqlc.Queries, c *gin.Context, id int64) error {
		_, err := q.InvitationGetByID(c.Request.Context(), id)
		return err
	})
)

func lookupUser(c *gin.Context, q *dbsqlc.Queries) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound()
	}
	_, err = q.MembershipGetMember(c.Request.Context(), id)
	return err
}

func principal(c *gin.Context) auth.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(auth.Principal)
	return pr
}

// RateLimits bounds requests per tenant and per credential, in requests per second with a burst.
type RateLimits struct {
	TenantRate, TenantBurst         float64
	CredentialRate, CredentialBurst float64
	// LoginRate and LoginBurst bound login and token attempts at one account name (email, client id or
	// token) from one client address.
	LoginRate, LoginBurst float64
	// LoginAccountRate and LoginAccountBurst bound the attempts at one account from all addresses
	// together. Well above LoginRate, so that guesses from one address slow that address down and never
	// lock the account's owner out; only many addresses together meet it.
	LoginAccountRate, LoginAccountBurst float64
	// AddressRate and AddressBurst bound requests from one client address to the routes that need no
	// credential (logins, tokens, invitations, the operator's), checked before the body is read.
	AddressRate, AddressBurst float64
	// AddressConcurrency caps the requests in progress from one client address on those routes.
	AddressConcurrency int
}

// withDefaults fills each limit left at zero from DefaultConfig's.
func (l RateLimits) withDefaults() RateLimits {
	d := DefaultConfig().Rates
	for _, pair := range []struct{ rate, burst, defRate, defBurst *float64 }{
		{&l.TenantRate, &l.TenantBurst, &d.TenantRate, &d.TenantBurst},
		{&l.CredentialRate, &l.CredentialBurst, &d.CredentialRate, &d.CredentialBurst},
		{&l.LoginRate, &l.LoginBurst, &d.LoginRate, &d.LoginBurst},
		{&l.LoginAccountRate, &l.LoginAccountBurst, &d.LoginAccountRate, &d.LoginAccountBurst},
		{&l.AddressRate, &l.AddressBurst, &d.AddressRate, &d.AddressBurst},
	} {
		if *pair.rate == 0 {
			*pair.rate, *pair.burst = *pair.defRate, *pair.defBurst
		}
	}
	if l.AddressConcurrency == 0 {
		l.AddressConcurrency = d.AddressConcurrency
	}
	return l
}

// limiters hands out one token bucket per key, and counts requests in progress per client address.
type limiters struct {
	cfg        RateLimits
	mu         sync.Mutex
	m          map[string]*rate.Limiter
	inProgress map[string]int
}

func newLimiters(cfg RateLimits) *limiters {
	return &limiters{cfg: cfg.withDefaults(), m: map[string]*rate.Limiter{}, inProgress: map[string]int{}}
}

func (l *limiters) get(key string, r, burst float64) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) > 100_000 { // forget idle buckets rather than grow without bound
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(rate.Limit(r), int(math.Max(1, burst)))
		l.m[key] = lim
	}
	return lim
}

// allow takes a token from the tenant's and the credential's buckets, or answers 429 with Retry-After.
func (l *limiters) allow(c *gin.Context, p auth.Principal) bool {
	if !take(c, l.get("tenant:"+p.TenantID.String(), l.cfg.TenantRate, l.cfg.TenantBurst)) {
		return false
	}
	return take(c, l.get("cred:"+p.ActorID(), l.cfg.CredentialRate, l.cfg.CredentialBurst))
}

// allowLogin limits attempts at an account name (email, client id or token): per client address at
// LoginRate, and from all addresses together at the higher LoginAccountRate. publicEdge has limited the
// address already.
func (l *limiters) allowLogin(c *gin.Context, account string) bool {
	sum := sha256.Sum256([]byte(strings.ToLower(account)))
	key := string(sum[:8])
	return take(c, l.get("login:"+key+"@"+c.ClientIP(), l.cfg.LoginRate, l.cfg.LoginBurst)) &&
		take(c, l.get("login-account:"+key, l.cfg.LoginAccountRate, l.cfg.LoginAccountBurst))
}

// enter counts a request of addr in progress, unless addr has AddressConcurrency of them already.
func (l *limiters) enter(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inProgress[addr] >= l.cfg.AddressConcurrency {
		return false
	}
	l.inProgress[addr]++
	return true
}

func (l *limiters) leave(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inProgress[addr]--; l.inProgress[addr] <= 0 {
		delete(l.inProgress, addr)
	}
}

// publicEdge guards the routes that need no credential, before anything reads the body: at most
// AddressConcurrency requests in progress per client address (slow clients of one address cannot hold
// the server), and AddressRate requests per address.
func (s *server) publicEdge() gin.HandlerFunc {
	return func(c *gin.Context) {
		addr := c.ClientIP()
		if !s.limits.enter(addr) {
			c.Header("Retry-After", "1")
			writeProblem(c, http.StatusTooManyRequests, "too many requests in progress",
				"this address has too many requests in progress; retry after 1 s")
			return
		}
		defer s.limits.leave(addr)
		if take(c, s.limits.get("address:"+addr, s.limits.cfg.AddressRate, s.limits.cfg.AddressBurst)) {
			c.Next()
		}
	}
}

func take(c *gin.Context, lim *rate.Limiter) bool {
	r := lim.Reserve()
	if delay := r.Delay(); r.OK() && delay == 0 {
		return true
	} else {
		r.Cancel()
		secs := int(math.Ceil(delay.Seconds()))
		if !r.OK() || secs < 1 {
			secs = 1
		}
		c.Header("Retry-After", strconv.Itoa(secs))
		writeProblem(c, http.StatusTooManyRequests, "rate limited", "too many requests; retry after "+strconv.Itoa(secs)+" s")
		return false
	}
}

// operatorOnly admits requests that carry the platform operator's token.
func (s *server) operatorOnly() gin.HandlerFunc {
	return func(c *gin.Context) {
		cred, ok := bearer(c)
		if !ok || len(s.operatorTokenHash) == 0 {
			unauthorized(c)
			return
		}
		sum := sha256.Sum256([]byte(cred))
		if subtle.ConstantTimeCompare(sum[:], s.operatorTokenHash) != 1 {
			unauthorized(c)
			return
		}
		c.Next()
	}
}

package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a provider's rate limit that a message counts against: at most Burst at once, then one every
// Every. Limits with the same Key are one limit, shared by every channel that names it (a Telegram bot's
// 30 messages a second, across its chats).
type Limit struct {
	Key   string
	Every time.Duration
	Burst int
	// N is how much of the limit the message takes: 1 unless it is several requests (PagerDuty sends an
	// event for each alert).
	N int
}

// limitKey names a limit after a secret (a token, a webhook URL) without holding the secret itself.
func limitKey(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// limiters hold the rate limits of this process, on its clock. Limits count per process: replicas of
// the notifier each keep their own.
type limiters struct {
	clock Clock
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newLimiters(clock Clock) *limiters {
	return &limiters{clock: clock, m: map[string]*rate.Limiter{}}
}

// maxIdleLimiters is how many limiters are kept before the full ones (unused for a while) are dropped.
const maxIdleLimiters = 10000

func (l *limiters) get(lim Limit, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.m[lim.Key]; ok {
		return r
	}
	if len(l.m) >= maxIdleLimiters {
		for k, r := range l.m {
			if r.TokensAt(now) >= float64(r.Burst()) {
				delete(l.m, k)
			}
		}
	}
	r := rate.NewLimiter(rate.Every(lim.Every), max(lim.Burst, 1))
	l.m[lim.Key] = r
	return r
}

// wait takes each limit's share for a message and waits, on the clock, until every limit allows it. It
// returns early with ctx's error, giving the shares back.
func (l *limiters) wait(ctx context.Context, limits []Limit) error {
	if len(limits) == 0 {
		return nil
	}
	now := l.clock.Now()
	var delay time.Duration
	var taken []*rate.Reservation
	for _, lim := range limits {
		r := l.get(lim, now)
		n := min(max(lim.N, 1), r.Burst())
		res := r.ReserveN(now, n)
		taken = append(taken, res)
		delay = max(delay, res.DelayFrom(now))
	}
	if delay <= 0 {
		return nil
	}
	select {
	case <-l.clock.After(delay):
		return nil
	case <-ctx.Done():
		for _, res := range taken {
			res.CancelAt(l.clock.Now())
		}
		return ctx.Err()
	}
}

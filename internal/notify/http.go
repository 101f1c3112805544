package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
)

// Channel is a channel as a send sees it: its settings with the secrets in them.
type Channel struct {
	ID       int64
	TenantID uuid.UUID
	Name     string
	Kind     string
	Settings json.RawMessage
}

// Delivery is one send of a message to a channel.
type Delivery struct {
	Channel Channel
	Message *Message
	env     *env
	// status is the provider's answer to the last request (an HTTP status or an SMTP reply code), zero
	// while there is none. Kinds set it through answered.
	status int
}

// answered records the provider's status code.
func (d *Delivery) answered(code int) { d.status = code }

// Status is the provider's answer to the send, zero when there was none.
func (d *Delivery) Status() int { return d.status }

// ProviderError is a provider's refusal or failure: its status, its words and how long it asked to wait
// before another attempt.
type ProviderError struct {
	// Status is the HTTP status or SMTP reply code; zero when the provider did not answer.
	Status int
	// Text is what the provider said (bounded), or what went wrong on the way.
	Text string
	// RetryAfter is the wait the provider asked for (Retry-After, Telegram's parameters.retry_after,
	// Discord's retry_after); zero when it said nothing.
	RetryAfter time.Duration
}

func (e *ProviderError) Error() string {
	if e.Status == 0 {
		return e.Text
	}
	if e.Text == "" {
		return fmt.Sprintf("status %d", e.Status)
	}
	return fmt.Sprintf("status %d: %s", e.Status, e.Text)
}

// maxAnswerBytes bounds what is read of a provider's answer, and maxErrorText what of it an error keeps.
const (
	maxAnswerBytes = 64 << 10
	maxErrorText   = 512
)

// env is what every send shares: the HTTP clients, the SMTP relay, the providers' addresses.
type env struct {
	// userHTTP posts to the URLs users chose (webhooks): every connection through the SSRF guard's
	// dialer, and no redirect is followed.
	userHTTP *http.Client
	// apiHTTP posts to the providers' own API hosts (Slack's API, Telegram, PagerDuty), which are not
	// the users' choice; redirects are not followed either.
	apiHTTP   *http.Client
	smtp      *smtpRelay // nil without --smtp-url
	providers Providers
	userAgent string
	now       func() time.Time
}

// Providers are the base URLs of the providers' own APIs. Tests point them at local fakes; they are no
// setting of users and no flag.
type Providers struct {
	SlackAPI     string // https://slack.com/api
	TelegramAPI  string // https://api.telegram.org
	PagerDutyAPI string // https://events.pagerduty.com
}

// DefaultProviders are the real ones.
func DefaultProviders() Providers {
	return Providers{SlackAPI: "https://slack.com/api", TelegramAPI: "https://api.telegram.org",
		PagerDutyAPI: "https://events.pagerduty.com"}
}

func (p Providers) withDefaults() Providers {
	d := DefaultProviders()
	if p.SlackAPI == "" {
		p.SlackAPI = d.SlackAPI
	}
	if p.TelegramAPI == "" {
		p.TelegramAPI = d.TelegramAPI
	}
	if p.PagerDutyAPI == "" {
		p.PagerDutyAPI = d.PagerDutyAPI
	}
	return p
}

// newHTTPClient returns a client that follows no redirect; with a guard, every connection it makes is
// checked against the address actually dialled.
func newHTTPClient(guard *checks.Guard, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if guard != nil {
		dialer = guard.Dialer(timeout)
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// request is one HTTP request of a send.
type request struct {
	client  *http.Client
	method  string
	url     string
	headers map[string]string
	body    []byte
}

// answer is what a provider answered.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends r and reads the answer. A failure to get an answer is retryable (a timeout, a refused or
// reset connection) unless the guard refused the address, which no retry changes. The answer's status
// is recorded on d.
func (d *Delivery) do(ctx context.Context, r request) (answer, bool, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, bytes.NewReader(r.body))
	if err != nil {
		return answer{}, false, &ProviderError{Text: "cannot make the request: " + redactURLError(err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.env.userAgent)
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if errors.Is(err, checks.ErrForbiddenTarget) {
			return answer{}, false, &ProviderError{Text: guardReason(err)}
		}
		return answer{}, true, &ProviderError{Text: transportReason(ctx, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	d.answered(resp.StatusCode)
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, false, nil
}

// judge reads an HTTP answer the way most providers mean it: 2xx is delivered; 429 and 5xx are worth
// another attempt (after Retry-After when given); a redirect, which is never followed, and any other 4xx
// are final. text, when not empty, replaces the body as the provider's words.
func judge(a answer, text string) (bool, error) {
	if a.status >= 200 && a.status < 300 {
		return false, nil
	}
	if text == "" {
		text = bodyText(a.body)
	}
	pe := &ProviderError{Status: a.status, Text: text, RetryAfter: retryAfter(a.header)}
	switch {
	case a.status == http.StatusTooManyRequests, a.status >= 500:
		return true, pe
	case a.status >= 300 && a.status < 400:
		pe.Text = "redirect not followed"
		if loc := a.header.Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil && u.Host != "" {
				pe.Text += " (to " + u.Host + ")"
			}
		}
	}
	return false, pe
}

// postJSON posts body as JSON and judges the answer as judge does.
func (d *Delivery) postJSON(ctx context.Context, client *http.Client, url string, headers map[string]string, body any) (answer, bool, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return answer{}, false, fmt.Errorf("encode the message: %w", err)
	}
	a, retry, err := d.do(ctx, request{client: client, method: http.MethodPost, url: url, headers: headers, body: raw})
	if err != nil {
		return a, retry, err
	}
	retry, err = judge(a, "")
	return a, retry, err
}

// retryAfter reads Retry-After: seconds, or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// bodyText is a provider's answer as an error's words: trimmed, valid UTF-8, bounded.
func bodyText(body []byte) string {
	return bound(strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD")))
}

// bound cuts s to maxErrorText bytes on a character boundary.
func bound(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// transportReason says why no answer came, without the URL (webhook URLs may hold secrets).
func transportReason(ctx context.Context, err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		if ctx.Err() != nil {
			return "timeout: no answer in time"
		}
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return redactURLError(err)
}

// redactURLError drops the URL that net/http quotes in its errors (`Post "https://…": …`): a webhook URL
// may carry a secret token.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// guardReason is the guard's own words, without the wrappers that quote the URL.
func guardReason(err error) string {
	for {
		switch e := err.(type) {
		case *url.Error:
			err = e.Err
			continue
		case *net.OpError:
			err = e.Err
			continue
		}
		return err.Error()
	}
}

package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// emailKind sends an email with a plain-text and an HTML part through the deployment's SMTP relay
// (--smtp-url, --smtp-from); channels name only the recipients.
type emailKind struct{}

// EmailSettings are an email channel's settings.
type EmailSettings struct {
	To []string `json:"to"`
}

const maxEmailRecipients = 50

func (emailKind) Name() string { return "email" }

func (emailKind) Validate(settings json.RawMessage) []Problem {
	var ps problems
	var st EmailSettings
	if !decodeSettings(&ps, "email", settings, &st) {
		return ps
	}
	if len(st.To) == 0 || len(st.To) > maxEmailRecipients {
		ps.add("settings.to", "must list 1 to %d email addresses", maxEmailRecipients)
	}
	for i, to := range st.To {
		field := "settings.to[" + strconv.Itoa(i) + "]"
		addr, err := mail.ParseAddress(to)
		if err != nil || addr.Name != "" || len(to) > 254 || strings.ContainsAny(to, "\r\n") {
			ps.add(field, "must be a plain email address (name@example.com)")
		}
	}
	return ps
}

func (emailKind) Secrets() secrets.Fields { return secrets.Fields{} }

func (emailKind) Endpoints(json.RawMessage) []Endpoint { return nil }

func (emailKind) Destination(json.RawMessage) string { return "" }

func (emailKind) Limits(json.RawMessage, *Message) []Limit { return nil }

func (emailKind) Notify(ctx context.Context, d *Delivery) (bool, error) {
	relay := d.env.smtp
	if relay == nil {
		return false, &ProviderError{Text: "no SMTP relay: this deployment runs without --smtp-url"}
	}
	st := settingsOf[EmailSettings](d.Channel.Settings)
	msg, err := EmailMessage(d.Message, relay.from, st.To)
	if err != nil {
		return false, err
	}
	return relay.send(ctx, d, msg)
}

// EmailMessage is the email for m: the title as subject, a plain-text and an HTML part, and a Message-ID
// that carries the idempotency key (<infrawatch.notification.KEY@domain of From>), so that a resend after
// a crash is the same message to mail clients.
func EmailMessage(m *Message, from string, to []string) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("--smtp-from %q: %w", from, err)
	}
	if err := msg.To(to...); err != nil {
		return nil, &ProviderError{Text: "recipients: " + err.Error()}
	}
	msg.Subject(m.Title())
	domain := "infrawatch.invalid"
	if addr, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(addr.Address, "@"); ok {
			domain = d
		}
	}
	msg.SetMessageIDWithValue("infrawatch.notification." + strconv.FormatInt(m.Key, 10) + "@" + domain)
	msg.SetDateWithValue(m.Now)
	msg.SetGenHeader("X-Infrawatch-Id", strconv.FormatInt(m.Key, 10))
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBulk()
	msg.SetBodyString(gomail.TypeTextPlain, m.PlainText())
	var html bytes.Buffer
	if err := emailHTML.Execute(&html, emailView(m)); err != nil {
		return nil, fmt.Errorf("render the HTML part: %w", err)
	}
	msg.AddAlternativeString(gomail.TypeTextHTML, html.String())
	return msg, nil
}

type emailAlertView struct {
	State, Headline, URL string
	Details              []string
}

func emailView(m *Message) map[string]any {
	alerts := make([]emailAlertView, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		alerts = append(alerts, emailAlertView{State: strings.ToUpper(stateWord(a)), Headline: a.Headline(), URL: a.URL,
			Details: a.Details(m.Now)})
	}
	return map[string]any{"Title": m.Title(), "Test": m.Test, "Alerts": alerts, "Tenant": m.Tenant.Name, "Key": m.Key}
}

// emailHTML escapes every value it is given (html/template), links included.
var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<h2>{{.Title}}</h2>
{{if .Test}}<p>This is a test message from infrawatch: the channel works.</p>{{end}}
{{range .Alerts}}<div style="margin: 1em 0">
<p><strong>{{.State}}</strong> {{if .URL}}<a href="{{.URL}}">{{.Headline}}</a>{{else}}{{.Headline}}{{end}}</p>
<ul>{{range .Details}}<li>{{.}}</li>{{end}}</ul>
</div>{{end}}
<p style="color: #777">infrawatch{{if .Tenant}} · {{.Tenant}}{{end}} · notification {{.Key}}</p>
</body></html>
`))

// SMTPConfig is the deployment's relay: --smtp-url smtp[s]://user:pass@host:port and --smtp-from.
type SMTPConfig struct {
	URL  string
	From string
	// TLS, when set, replaces the TLS configuration the URL implies (its ServerName is filled from the
	// URL): tests trust their own certificate with it. No flag sets it.
	TLS *tls.Config
}

// smtpRelay is a parsed SMTPConfig.
type smtpRelay struct {
	host        string
	port        int
	implicitTLS bool
	policy      gomail.TLSPolicy
	user, pass  string
	from        string
	tls         *tls.Config
	timeout     time.Duration
}

// parseSMTP reads the relay's URL: smtp:// (STARTTLS, required unless ?starttls=opportunistic or none)
// or smtps:// (TLS from the first byte); a user and password, if given, log in.
func parseSMTP(c SMTPConfig, timeout time.Duration) (*smtpRelay, error) {
	if c.URL == "" {
		return nil, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, errors.New("--smtp-url does not parse; want smtp[s]://user:pass@host:port")
	}
	r := &smtpRelay{host: u.Hostname(), from: c.From, timeout: timeout, policy: gomail.TLSMandatory}
	switch u.Scheme {
	case "smtp":
		r.port = 587
	case "smtps":
		r.port, r.implicitTLS = 465, true
	default:
		return nil, errors.New("--smtp-url must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)")
	}
	if r.host == "" {
		return nil, errors.New("--smtp-url names no host")
	}
	if p := u.Port(); p != "" {
		if r.port, err = strconv.Atoi(p); err != nil || r.port < 1 || r.port > 65535 {
			return nil, errors.New("--smtp-url: the port must be from 1 to 65535")
		}
	}
	switch st := u.Query().Get("starttls"); st {
	case "", "required":
	case "opportunistic":
		r.policy = gomail.TLSOpportunistic
	case "none":
		r.policy = gomail.NoTLS
	default:
		return nil, fmt.Errorf("--smtp-url: starttls=%q; use required (default), opportunistic or none", st)
	}
	if u.User != nil {
		r.user = u.User.Username()
		r.pass, _ = u.User.Password()
	}
	if c.From == "" {
		return nil, errors.New("--smtp-from is required with --smtp-url: the address notifications come from")
	}
	if addr, err := mail.ParseAddress(c.From); err != nil || addr.Address == "" {
		return nil, fmt.Errorf("--smtp-from %q is not an email address", c.From)
	}
	r.tls = &tls.Config{ServerName: r.host, MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		r.tls = c.TLS.Clone()
		if r.tls.ServerName == "" {
			r.tls.ServerName = r.host
		}
	}
	return r, nil
}

// send delivers msg through the relay. A temporary refusal (4xx) or a failed connection is worth
// another attempt; a permanent one (5xx) is not. The relay's reply code is the attempt's status.
func (r *smtpRelay) send(ctx context.Context, d *Delivery, msg *gomail.Msg) (bool, error) {
	opts := []gomail.Option{gomail.WithPort(r.port), gomail.WithTimeout(r.timeout), gomail.WithTLSConfig(r.tls),
		gomail.WithHELO("infrawatch")}
	if r.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(r.policy))
	}
	if r.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(r.user),
			gomail.WithPassword(r.pass))
	}
	client, err := gomail.NewClient(r.host, opts...)
	if err != nil {
		return false, &ProviderError{Text: "SMTP client: " + err.Error()}
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil {
		d.answered(250)
		return false, nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		d.answered(se.ErrorCode())
		text := se.Error()
		if se.ErrorCode() == 0 { // no reply: the connection, TLS or the dial failed
			return true, &ProviderError{Text: bound(text)}
		}
		return se.IsTemp(), &ProviderError{Status: se.ErrorCode(), Text: bound(text)}
	}
	// A reply before the message (a refused login, a refused STARTTLS) comes as the relay's own words.
	var reply *textproto.Error
	if errors.As(err, &reply) {
		d.answered(reply.Code)
		return reply.Code < 500, &ProviderError{Status: reply.Code, Text: bound(err.Error())}
	}
	// No reply at all: the connection or TLS failed; another attempt may find the relay back.
	return true, &ProviderError{Text: bound(err.Error())}
}

package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"strings"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Invitation is what an invitation email says: who is invited where, as what, and the token that only
// the owner of the address should see.
type Invitation struct {
	To         string
	TenantName string
	Role       string
	Token      string
	ExpiresAt  time.Time
}

// ErrNoRelay says the deployment has no SMTP relay (--smtp-url).
var ErrNoRelay = errors.New("no SMTP relay: this deployment runs without --smtp-url")

// CanEmail says whether the sender has an SMTP relay to send email through.
func (s *Sender) CanEmail() bool { return s.env.smtp != nil }

// SendInvitation emails an invitation's token to the person invited, through the relay, and returns
// once the relay took it. The token then reaches only whoever reads that address.
func (s *Sender) SendInvitation(ctx context.Context, inv Invitation) error {
	relay := s.env.smtp
	if relay == nil {
		return ErrNoRelay
	}
	msg := gomail.NewMsg()
	if err := msg.From(relay.from); err != nil {
		return fmt.Errorf("--smtp-from %q: %w", relay.from, err)
	}
	if err := msg.To(inv.To); err != nil {
		return fmt.Errorf("the invited address: %w", err)
	}
	msg.Subject("You are invited to " + inv.TenantName + " on infrawatch")
	domain := "infrawatch.invalid"
	if addr, err := mail.ParseAddress(relay.from); err == nil {
		if _, d, ok := strings.Cut(addr.Address, "@"); ok {
			domain = d
		}
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	msg.SetMessageIDWithValue("infrawatch.invitation." + hex.EncodeToString(id) + "@" + domain)
	msg.SetDateWithValue(s.clock.Now())
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	accept := "/api/v1/auth/accept-invite"
	if s.cfg.PublicURL != "" {
		accept = strings.TrimRight(s.cfg.PublicURL, "/") + accept
	}
	view := map[string]string{"Tenant": inv.TenantName, "Role": inv.Role, "Token": inv.Token, "Accept": accept,
		"Expires": inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")}
	var text, html bytes.Buffer
	if err := invitationText.Execute(&text, view); err != nil {
		return err
	}
	if err := invitationHTML.Execute(&html, view); err != nil {
		return err
	}
	msg.SetBodyString(gomail.TypeTextPlain, text.String())
	msg.AddAlternativeString(gomail.TypeTextHTML, html.String())
	d := &Delivery{env: s.env}
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if _, err := relay.send(sendCtx, d, msg); err != nil {
		return fmt.Errorf("email the invitation: %w", err)
	}
	return nil
}

// The invitation email's parts: plain text, and HTML that escapes the tenant's name and the rest.
var (
	invitationText = texttemplate.Must(texttemplate.New("text").Parse(`You are invited to join {{.Tenant}} on infrawatch as {{.Role}}.

Your invitation token: {{.Token}}

It works once, until {{.Expires}}. To accept, send it with a password of your choosing (or, if you
have an infrawatch account with this address, its password):

  curl -s {{.Accept}} -d '{"token":"{{.Token}}","password":"…"}'

If you did not expect this invitation, ignore this email: nothing happens without the token.
`))
	invitationHTML = template.Must(template.New("html").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<p>You are invited to join <strong>{{.Tenant}}</strong> on infrawatch as <strong>{{.Role}}</strong>.</p>
<p>Your invitation token: <code>{{.Token}}</code></p>
<p>It works once, until {{.Expires}}. To accept, send it with a password of your choosing (or, if you have an
infrawatch account with this address, its password) to <code>POST {{.Accept}}</code>.</p>
<p style="color: #777">If you did not expect this invitation, ignore this email: nothing happens without the token.</p>
</body></html>
`))
)

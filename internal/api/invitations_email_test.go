package api_test

import (
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/notify/smtptest"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// With an SMTP relay, an invitation's token goes by email to the person invited (through a real SMTP
// server with STARTTLS and AUTH) and never into the answer, so the inviting admin cannot use it; the
// token from the email works. An invitation that cannot be emailed is not made.
func TestInvitationsAreEmailedWithARelay(t *testing.T) {
	srv := smtptest.Start(t, "relay", "relay-pass")
	keys, _ := secrets.Parse(dbtest.SecretKey)
	mailer := func(password string) *notify.Sender {
		s, err := notify.NewSender(notify.Config{PublicURL: "https://iw.example.com",
			SMTP: notify.SMTPConfig{URL: "smtp://relay:" + password + "@" + srv.Addr, From: "infrawatch@iw.example.com", TLS: srv.TLS}},
			&checks.Guard{}, keys, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w := newWorldCustom(t, db.FlavorPostgres, testLimits, func(d *api.Deps) { d.Invitations = mailer("relay-pass") })
	owner := w.a.tokens["owner"]

	got := w.call(t, "POST", "/api/v1/users", owner, map[string]any{"email": "ana@example.com", "role": "editor"}).must(t, http.StatusCreated)
	if strings.Contains(got.raw, "iwi_") || got.json["emailed"] != true || got.json["status"] != "pending" {
		t.Fatalf("the answer: %s; want no token and emailed true", got.raw)
	}
	m := srv.Next(t)
	if len(m.To) != 1 || m.To[0] != "ana@example.com" || !m.TLS || !m.Authenticated {
		t.Errorf("envelope %v, tls %v, auth %v", m.To, m.TLS, m.Authenticated)
	}
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "You are invited to alpha on infrawatch" {
		t.Errorf("Subject %q", subject)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var text string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			raw, _ := io.ReadAll(p)
			text = string(raw)
		}
	}
	token := regexp.MustCompile(`iwi_[A-Za-z0-9_-]+`).FindString(text)
	if token == "" || !strings.Contains(text, "https://iw.example.com/api/v1/auth/accept-invite") || !strings.Contains(text, "as editor") {
		t.Fatalf("the email's text lacks the token, the link or the role:\n%s", text)
	}
	w.accept(t, token, "ana's long passphrase").must(t, http.StatusOK)

	// A relay that refuses (a wrong password here) makes no invitation: 503, and nothing pending.
	refusing := newWorldCustom(t, db.FlavorPostgres, testLimits, func(d *api.Deps) { d.Invitations = mailer("wrong") })
	failed := refusing.call(t, "POST", "/api/v1/users", refusing.a.tokens["owner"], map[string]any{"email": "bo@example.com", "role": "viewer"})
	if failed.status != http.StatusServiceUnavailable || strings.Contains(failed.raw, "iwi_") {
		t.Fatalf("with a refusing relay: %d %s", failed.status, failed.raw)
	}
	if list := refusing.call(t, "GET", "/api/v1/invitations", refusing.a.tokens["owner"], nil).must(t, http.StatusOK); strings.Contains(list.raw, "bo@example.com") {
		t.Errorf("an invitation that was not emailed was made: %s", list.raw)
	}
}

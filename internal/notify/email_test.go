package notify

import (
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/notify/smtptest"
)

// An email goes through a real SMTP server with STARTTLS and AUTH: the server gets the recipients, the
// headers (the subject, a Message-ID carrying the idempotency key) and both parts, the HTML one escaped.
func TestEmailThroughSMTP(t *testing.T) {
	srv := smtptest.Start(t, "relay-user", "relay-pass")
	s, _ := testSender(t, Config{SMTP: SMTPConfig{URL: "smtp://relay-user:relay-pass@" + srv.Addr, From: "alerts@iw.example.com",
		TLS: srv.TLS}})
	to := []string{"ops@example.com", "oncall@example.com"}
	out := send(t, s, "email", map[string]any{"to": to}, sampleMessage())
	if out.Err != nil || out.Status != 250 {
		t.Fatalf("send: %+v %q", out, out.ErrorText())
	}
	got := srv.Next(t)
	if !got.TLS || !got.Authenticated || got.From != "alerts@iw.example.com" || !slices.Equal(got.To, to) {
		t.Errorf("session: tls %v, auth %v, from %q, to %v", got.TLS, got.Authenticated, got.From, got.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "[FIRING:1, RESOLVED:1] CPU <high> & *hot*" {
		t.Errorf("Subject %q", subject)
	}
	if id := msg.Header.Get("Message-ID"); id != "<infrawatch.notification.101@iw.example.com>" {
		t.Errorf("Message-ID %q: want the idempotency key in it", id)
	}
	if msg.Header.Get("X-Infrawatch-Id") != "101" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", msg.Header)
	}
	if addrs, _ := msg.Header.AddressList("To"); len(addrs) != 2 || addrs[0].Address != to[0] || addrs[1].Address != to[1] {
		t.Errorf("To %v", addrs)
	}
	mediaType, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", mediaType)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, _ := io.ReadAll(p) // multipart decodes quoted-printable
		parts[ct] = string(body)
	}
	plain, html := parts["text/plain"], parts["text/html"]
	for _, want := range []string{"FIRING: CPU > 90% & <rising>", "value 93.5 > threshold 90", "https://iw.example.com/api/v1/alerts/7",
		"resolved at 2030-06-01 11:58 UTC after 10m"} {
		if !strings.Contains(plain, want) {
			t.Errorf("plain part lacks %q:\n%s", want, plain)
		}
	}
	for _, want := range []string{`<a href="https://iw.example.com/api/v1/alerts/7">CPU &gt; 90% &amp; &lt;rising&gt;`,
		"on host web-1 &lt;prod&gt;", "<h2>[FIRING:1, RESOLVED:1] CPU &lt;high&gt; &amp; *hot*</h2>"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<rising>") || strings.Contains(html, "<prod>") {
		t.Errorf("HTML part holds user text unescaped:\n%s", html)
	}

	// The relay's refusals: a temporary one is retried, a permanent one and a failed login are final.
	for _, tc := range []struct {
		url   string
		to    string
		retry bool
		code  int
	}{
		{"smtp://relay-user:relay-pass@" + srv.Addr, "busy@example.com", true, 451},
		{"smtp://relay-user:relay-pass@" + srv.Addr, "nobody@example.com", false, 550},
		{"smtp://relay-user:wrong-pass@" + srv.Addr, "ops@example.com", false, 535},
	} {
		s, _ := testSender(t, Config{SMTP: SMTPConfig{URL: tc.url, From: "alerts@iw.example.com", TLS: srv.TLS}})
		out := send(t, s, "email", map[string]any{"to": []string{tc.to}}, sampleMessage())
		if out.Err == nil || out.Retry != tc.retry || out.Status != tc.code {
			t.Errorf("%s: %+v %q, want retry %v and %d", tc.to, out, out.ErrorText(), tc.retry, tc.code)
		}
		if strings.Contains(out.ErrorText(), "relay-pass") || strings.Contains(out.ErrorText(), "wrong-pass") {
			t.Errorf("the error quotes the password: %q", out.ErrorText())
		}
	}
	// Without a relay, email channels fail, saying why.
	s, _ = testSender(t, Config{})
	if out := send(t, s, "email", map[string]any{"to": to}, sampleMessage()); out.Err == nil || out.Retry ||
		!strings.Contains(out.ErrorText(), "--smtp-url") {
		t.Errorf("without a relay: %+v", out)
	}
}

// The relay's URL is read as documented, and its mistakes are named without quoting the password.
func TestSMTPURL(t *testing.T) {
	r, err := parseSMTP(SMTPConfig{URL: "smtps://u:p%40ss@mail.example.com", From: "a@example.com"}, time.Second)
	if err != nil || r.port != 465 || !r.implicitTLS || r.user != "u" || r.pass != "p@ss" || r.host != "mail.example.com" {
		t.Errorf("smtps: %+v %v", r, err)
	}
	r, err = parseSMTP(SMTPConfig{URL: "smtp://relay:2525?starttls=opportunistic", From: "a@example.com"}, time.Second)
	if err != nil || r.port != 2525 || r.implicitTLS || r.user != "" {
		t.Errorf("smtp: %+v %v", r, err)
	}
	for _, c := range []SMTPConfig{{URL: "http://x", From: "a@example.com"}, {URL: "smtp://u:secret@x"},
		{URL: "smtp://u:secret@x", From: "not an address"}, {URL: "smtp://x?starttls=maybe", From: "a@example.com"}} {
		_, err := parseSMTP(c, time.Second)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: %v", c, err)
		}
	}
}

package notify

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Email is a message other parts of infrawatch send through the deployment's relay (--smtp-url), the
// scheduled SLA reports: a plain-text and an HTML part, inline images the HTML refers to by cid:, and
// attachments.
type Email struct {
	To      []string
	Subject string
	// MessageKey makes the Message-ID, <MessageKey@domain of --smtp-from>: the same key is the same
	// message to mail clients, so a resend after a crash shows once.
	MessageKey string
	Date       time.Time
	Text, HTML string
	Inline     []File // each with a ContentID, which the HTML refers to as cid:ContentID
	Attach     []File
	// Timeout, when longer than the sender's (--notify-timeout), bounds this send instead, and each
	// wait for the relay in it: a report with attachments is larger than an alert.
	Timeout time.Duration
}

// File is an inline image or an attachment.
type File struct {
	Name, ContentType, ContentID string
	Data                         []byte
}

// EmailMessageID is the Message-ID an Email with key gets from this sender's relay (without <>).
func (s *Sender) EmailMessageID(key string) string {
	domain := "infrawatch.invalid"
	if s.env.smtp != nil {
		if addr, err := mail.ParseAddress(s.env.smtp.from); err == nil {
			if _, d, ok := strings.Cut(addr.Address, "@"); ok {
				domain = d
			}
		}
	}
	return key + "@" + domain
}

// SendEmail sends e through the relay within the sender's timeout (or e's) and returns once the relay took it;
// retry says whether another attempt may succeed (a temporary refusal, a relay that did not answer).
// ErrNoRelay without --smtp-url.
func (s *Sender) SendEmail(ctx context.Context, e Email) (retry bool, err error) {
	relay := s.env.smtp
	if relay == nil {
		return false, ErrNoRelay
	}
	msg := gomail.NewMsg()
	if err := msg.From(relay.from); err != nil {
		return false, fmt.Errorf("--smtp-from %q: %w", relay.from, err)
	}
	if err := msg.To(e.To...); err != nil {
		return false, fmt.Errorf("recipients: %w", err)
	}
	msg.Subject(e.Subject)
	msg.SetMessageIDWithValue(s.EmailMessageID(e.MessageKey))
	msg.SetDateWithValue(e.Date)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBulk()
	msg.SetBodyString(gomail.TypeTextPlain, e.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	for _, f := range e.Inline {
		if err := msg.EmbedReader(f.Name, bytes.NewReader(f.Data), gomail.WithFileContentID("<"+strings.Trim(f.ContentID, "<>")+">"),
			gomail.WithFileContentType(gomail.ContentType(f.ContentType))); err != nil {
			return false, fmt.Errorf("embed %s: %w", f.Name, err)
		}
	}
	for _, f := range e.Attach {
		if err := msg.AttachReader(f.Name, bytes.NewReader(f.Data), gomail.WithFileContentType(gomail.ContentType(f.ContentType))); err != nil {
			return false, fmt.Errorf("attach %s: %w", f.Name, err)
		}
	}
	timeout := max(s.cfg.Timeout, e.Timeout)
	r := *relay
	r.timeout = max(r.timeout, timeout)
	d := &Delivery{env: s.env}
	sendCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.send(sendCtx, d, msg)
}

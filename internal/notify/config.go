package notify

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Config says how notifications are sent and delivered. A field left zero takes DefaultConfig's value.
type Config struct {
	// PublicURL is where people reach this deployment (https://infrawatch.example.com): messages link to
	// alerts under it. Empty: no links.
	PublicURL string
	// SMTP is the relay email channels send through.
	SMTP SMTPConfig
	// MaxAge is how long a notification is tried: past it, it fails with its last error.
	MaxAge time.Duration
	// Concurrency caps the messages being sent at once in this process; one channel has at most one.
	Concurrency int
	// Lease is how long a notifier holds a notification it claimed: a notifier that dies while sending
	// loses its notifications to the others this long after it claimed them, and they are sent again
	// with the same idempotency key.
	Lease time.Duration
	// Timeout bounds one send (connecting, the provider's answer).
	Timeout time.Duration
	// Batch is the most notifications one claim looks at.
	Batch int
	// Idle is how long the notifier waits when nothing is due.
	Idle time.Duration
	// BackoffBase and BackoffCap shape the wait before another attempt: BackoffBase doubled at each
	// attempt, at most BackoffCap, with up to half of it random (jitter), unless the provider asked for
	// a wait of its own.
	BackoffBase, BackoffCap time.Duration
	// MaxGroup is the most notifications one message carries; the rest of a group follows at once.
	MaxGroup int
	// TestSendEvery and TestSendBurst limit each tenant's test messages (POST /channels/{id}/test): they
	// reach third parties.
	TestSendEvery time.Duration
	TestSendBurst int
	// Owner names this notifier in leases; empty means host name, process id and a random suffix.
	Owner string
	// Providers are the providers' API base URLs; tests point them at fakes. No flag sets them.
	Providers Providers
}

// DefaultConfig is the configuration when nothing is set: the only copy of the defaults.
func DefaultConfig() Config {
	return Config{MaxAge: 24 * time.Hour, Concurrency: 32, Lease: 2 * time.Minute, Timeout: 15 * time.Second,
		Batch: 200, Idle: time.Second, BackoffBase: 10 * time.Second, BackoffCap: 10 * time.Minute, MaxGroup: 100,
		TestSendEvery: 10 * time.Second, TestSendBurst: 3, Providers: DefaultProviders()}
}

// AddFlags registers the flags of notifications, with DefaultConfig's values as their defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL,
		"where people reach this deployment (https://infrawatch.example.com): notifications link to alerts under it; empty: no links")
	fs.StringVar(&c.SMTP.URL, "smtp-url", c.SMTP.URL,
		"SMTP relay of email notifications: smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (TLS); prefer the environment variable")
	fs.StringVar(&c.SMTP.From, "smtp-from", c.SMTP.From, "sender address of email notifications (alerts@example.com)")
	fs.DurationVar(&c.MaxAge, "notify-max-age", d.MaxAge,
		"notifier role: how long a notification is retried before it fails with its last error")
	fs.IntVar(&c.Concurrency, "notify-concurrency", d.Concurrency,
		"notifier role: most messages being sent at once in this process (one per channel)")
	fs.DurationVar(&c.Lease, "notify-lease", d.Lease,
		"notifier role: how long a claimed notification is held; a dead notifier's are sent again after it, with the same idempotency key")
	fs.DurationVar(&c.Timeout, "notify-timeout", d.Timeout, "longest one send may take (connection and answer)")
}

// Validate refuses a configuration that cannot work, naming the flag to fix. It never quotes the SMTP
// password.
func (c Config) Validate() error {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return errors.New("--public-url must be an http:// or https:// URL with a host and no query (https://infrawatch.example.com)")
		}
	}
	if _, err := parseSMTP(c.SMTP, time.Second); err != nil {
		return err
	}
	if c.SMTP.URL == "" && c.SMTP.From != "" {
		return errors.New("--smtp-from is set but --smtp-url is not: email notifications need both")
	}
	switch {
	case c.MaxAge != 0 && c.MaxAge < time.Minute:
		return errors.New("--notify-max-age must be at least 1m")
	case c.Concurrency < 0:
		return errors.New("--notify-concurrency must be at least 1")
	case c.Timeout < 0 || (c.Timeout != 0 && c.Timeout < 100*time.Millisecond):
		return errors.New("--notify-timeout must be at least 100ms")
	case c.Lease < 0:
		return errors.New("--notify-lease must be positive")
	}
	w := c.withDefaults()
	if w.Lease < w.Timeout+time.Second {
		return fmt.Errorf("--notify-lease (%s) must be longer than --notify-timeout (%s) by at least a second, or a slow send "+
			"would be taken over and sent twice", w.Lease, w.Timeout)
	}
	return nil
}

// withDefaults fills the fields left zero from DefaultConfig, and names the notifier when Owner is empty.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, f := range []struct{ field, def *time.Duration }{{&c.MaxAge, &d.MaxAge}, {&c.Lease, &d.Lease},
		{&c.Timeout, &d.Timeout}, {&c.Idle, &d.Idle}, {&c.BackoffBase, &d.BackoffBase}, {&c.BackoffCap, &d.BackoffCap},
		{&c.TestSendEvery, &d.TestSendEvery}} {
		if *f.field <= 0 {
			*f.field = *f.def
		}
	}
	for _, f := range []struct{ field, def *int }{{&c.Concurrency, &d.Concurrency}, {&c.Batch, &d.Batch},
		{&c.MaxGroup, &d.MaxGroup}, {&c.TestSendBurst, &d.TestSendBurst}} {
		if *f.field <= 0 {
			*f.field = *f.def
		}
	}
	c.Providers = c.Providers.withDefaults()
	if c.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return c
}

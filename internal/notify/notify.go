// Package notify delivers notifications: the registry of channel kinds (email, Slack, Telegram,
// webhooks, Teams, Discord, PagerDuty), the messages they send, and the notifier — the `notifier` role's
// worker, which claims the outbox rows (app.notifications) that alerting writes, groups them, sends them,
// and records every attempt. It never reads alert tables: a notification's payload holds everything its
// message says (the contract in migrations/000011_alerting_contract.up.sql).
//
// Each kind is one file — email.go, slack.go, telegram.go, webhook.go, teams.go, discord.go,
// pagerduty.go — holding a type that implements Kind: its settings and their validation, which of them
// are secret, where it connects (for the SSRF guard), its rate limits, and Notify, which sends one
// message and says whether a failure is worth another attempt (Alertmanager's contract). What kinds
// share is here (the registry), in message.go (what a message says, from the payloads), http.go (posting
// JSON, reading answers into retryable or final errors), ratelimit.go, sender.go (one send, bounded and
// measured), notifier.go (claims, grouping, retries, records) and testsend.go (a channel's test message).
//
// Adding a kind:
//
//  1. Write its file: a type implementing Kind, its settings type with every setting bounded, its
//     secrets listed (they are sealed at rest and masked in answers), and its tests beside it against a
//     local fake of the provider that checks the exact request the provider documents.
//  2. Register it: add it to registry and to the compile-time assertion list below, and to the names
//     TestRegistry expects.
//  3. Allow it in the database: a migration that replaces the CHECK on app.channels.kind (created in
//     migrations/000011_alerting_contract.up.sql), its down migration putting the old list back;
//     TestDatabaseAllowsExactlyTheRegisteredKinds fails until the two agree.
//  4. Document it: the Notifications section of README.md (how to set it up) and the kind enum and
//     settings of internal/api/openapi.json.
package notify

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

// Kind is one kind of channel. Its methods get the channel's settings with the secrets in them, as a
// user sends them or as stored and opened; all but Validate may assume that Validate found no problem.
type Kind interface {
	// Name is the kind as app.channels.kind stores it and the API names it.
	Name() string
	// Validate returns every problem of the settings, each naming its field as the API does
	// (settings.url, settings.to[1]).
	Validate(settings json.RawMessage) []Problem
	// Secrets are the settings that are sealed at rest and never shown back.
	Secrets() secrets.Fields
	// Endpoints are the URLs a channel posts to that a user chose (webhook, Slack, Teams and Discord
	// webhooks), each with its field, for the SSRF guard when a channel is saved; every connection is
	// checked again when it is made. Providers' own API hosts are not endpoints.
	Endpoints(settings json.RawMessage) []Endpoint
	// Destination is where the channel sends its secrets. An update that changes it must send every
	// secret again, so that whoever may edit a channel cannot point its stored secrets at a host of theirs.
	Destination(settings json.RawMessage) string
	// Limits are the provider's rate limits that a message to this channel counts against.
	Limits(settings json.RawMessage, m *Message) []Limit
	// Notify sends one message. On failure, retry says whether another attempt may succeed (timeouts,
	// connection errors, 5xx, 429) or not (any other refusal); a *ProviderError carries the provider's
	// status, its words and how long it asked to wait.
	Notify(ctx context.Context, d *Delivery) (retry bool, err error)
}

// registry holds every kind, in the order the API lists them.
var registry = []Kind{emailKind{}, slackKind{}, telegramKind{}, webhookKind{}, teamsKind{}, discordKind{}, pagerdutyKind{}}

// Every kind implements Kind, checked when the package compiles.
var (
	_ Kind = emailKind{}
	_ Kind = slackKind{}
	_ Kind = telegramKind{}
	_ Kind = webhookKind{}
	_ Kind = teamsKind{}
	_ Kind = discordKind{}
	_ Kind = pagerdutyKind{}
)

// Lookup returns the kind named name.
func Lookup(name string) (Kind, bool) {
	for _, k := range registry {
		if k.Name() == name {
			return k, true
		}
	}
	return nil, false
}

// Names lists the kinds' names, in the registry's order.
func Names() []string {
	names := make([]string, len(registry))
	for i, k := range registry {
		names[i] = k.Name()
	}
	return names
}

// Problem is one bad field of a channel, named as the API names it.
type Problem struct {
	Field, Message string
}

// Endpoint is a URL a channel posts to, and the field that names it.
type Endpoint struct {
	Field, URL string
}

// Validate checks a channel's kind and settings and returns every problem.
func Validate(kind string, settings json.RawMessage) []Problem {
	k, ok := Lookup(kind)
	if !ok {
		return []Problem{{Field: "kind", Message: "must be one of " + strings.Join(Names(), ", ")}}
	}
	return k.Validate(settings)
}

package alerting

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// The payload of an outbox row has exactly the shape the contract with notification delivery pins:
// keys, types, RFC 3339 UTC times, null where nothing is known.
func TestPayloadKeepsTheContract(t *testing.T) {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	host, hostName := int64(4), "web-1"
	rule := newClaimedRule(dbsqlc.AlertRuleClaimDueRow{ID: 12, TenantID: uuid.MustParse("11111111-2222-3333-4444-555555555555"),
		Name: "cpu high", Kind: "threshold", Severity: "critical", TenantSlug: "acme", TenantName: "ACME",
		Eval: []byte(`{"cmp": ">", "threshold": 90}`), Labels: []byte(`{"team": "web"}`), Escalation: []byte(`[]`)})
	p := &planned{rule: &rule, tenantID: rule.TenantID, summary: "s", details: "d", labels: map[string]string{"host": "web-1"},
		obs:     observation{RuleID: 12, Fingerprint: "f", HostID: &host, HostName: &hostName, Value: ValueOf(93.5)},
		outcome: Outcome{Alert: Alert{State: Firing, StartedAt: &started}}}
	var got map[string]map[string]any
	if err := json.Unmarshal(p.payload(41, false, Message{Kind: "firing"}), &got); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	want := map[string][]string{
		"alert": {"acked", "check", "comparator", "description", "fingerprint", "flapping", "host", "id", "labels", "resolved_at",
			"severity", "started_at", "state", "summary", "threshold", "value"},
		"rule":   {"id", "kind", "name"},
		"tenant": {"id", "name", "slug"},
	}
	if len(got) != 3 {
		t.Fatalf("top level %v", got)
	}
	for part, k := range want {
		if g := keys(got[part]); !slices.Equal(g, k) {
			t.Errorf("%s keys %v, want %v", part, g, k)
		}
	}
	a := got["alert"]
	if a["state"] != "firing" || a["started_at"] != "2026-03-01T11:00:00Z" || a["resolved_at"] != nil || a["value"] != 93.5 ||
		a["threshold"] != 90.0 || a["comparator"] != ">" || a["check"] != nil || a["id"] != 41.0 ||
		a["host"].(map[string]any)["name"] != "web-1" {
		t.Fatalf("alert %v", a)
	}
	if got["tenant"]["slug"] != "acme" || got["rule"]["kind"] != "threshold" {
		t.Fatalf("%v", got)
	}
}

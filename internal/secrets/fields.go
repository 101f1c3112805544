package secrets

import (
	"encoding/json"
	"fmt"
)

// Mask stands where a secret is stored: in settings as they are kept beside their sealed secrets, and as
// the API answers them. Sending it back in an update keeps the stored secret.
const Mask = "********"

// Fields names the secret settings of a kind of check or channel.
type Fields struct {
	// Settings whose value is secret (an SNMP community, a bot token).
	Settings []string
	// Maps are settings that are objects whose every value is secret (HTTP headers).
	Maps []string
}

// Split separates a settings object into what may be shown, with Mask in place of each secret, and the
// secrets themselves: an object of the same shape holding only them, or nil when there are none. An
// empty secret ("" or null) hides nothing and stays where it is; so does a map setting that is not an
// object (validation refuses it).
func Split(settings []byte, f Fields) (public, secret []byte, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(settings, &m); err != nil || m == nil {
		return nil, nil, fmt.Errorf("settings are not a JSON object")
	}
	out := map[string]any{}
	mask, _ := json.Marshal(Mask)
	for _, name := range f.Settings {
		if v, ok := m[name]; ok && !empty(v) {
			out[name] = v
			m[name] = mask
		}
	}
	for _, name := range f.Maps {
		var values map[string]json.RawMessage
		if raw, ok := m[name]; !ok || json.Unmarshal(raw, &values) != nil || values == nil {
			continue
		}
		hidden := map[string]json.RawMessage{}
		for k, v := range values {
			if !empty(v) {
				hidden[k] = v
				values[k] = mask
			}
		}
		if len(hidden) > 0 {
			out[name] = hidden
			m[name], _ = json.Marshal(values)
		}
	}
	if public, err = json.Marshal(m); err != nil {
		return nil, nil, err
	}
	if len(out) == 0 {
		return public, nil, nil
	}
	secret, err = json.Marshal(out)
	return public, secret, err
}

// Join puts secrets (as Split answered them, opened) back into public settings: each secret where its
// mask stands, and the values of a map setting key by key.
func Join(public, secret []byte) ([]byte, error) {
	if len(secret) == 0 {
		return public, nil
	}
	var m, s map[string]json.RawMessage
	if err := json.Unmarshal(public, &m); err != nil || m == nil {
		return nil, fmt.Errorf("settings are not a JSON object")
	}
	if err := json.Unmarshal(secret, &s); err != nil {
		return nil, fmt.Errorf("secrets are not a JSON object")
	}
	for name, v := range s {
		var sv, pv map[string]json.RawMessage
		if json.Unmarshal(v, &sv) == nil && sv != nil && json.Unmarshal(m[name], &pv) == nil && pv != nil {
			for k, x := range sv {
				pv[k] = x
			}
			v, _ = json.Marshal(pv)
		}
		m[name] = v
	}
	return json.Marshal(m)
}

func empty(v json.RawMessage) bool { return string(v) == `""` || string(v) == "null" }

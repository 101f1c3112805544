package secrets_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/secrets"
)

func keyring(t *testing.T, spec string) *secrets.Keyring {
	t.Helper()
	k, err := secrets.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSpec(t *testing.T, id string) string {
	t.Helper()
	s, err := secrets.NewKeySpec(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A blob opens with the keyring that sealed it, for the context it was sealed for, and never shows the
// plaintext; the same secret sealed twice gives two different blobs (a fresh nonce each time).
func TestSealOpens(t *testing.T) {
	k := keyring(t, newSpec(t, "k1"))
	ctx := secrets.For("app.channels.secrets", uuid.New())
	plain := []byte(`{"token":"xoxb-very-secret"}`)
	a, err := k.Seal(plain, ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal(plain, ctx)
	if bytes.Equal(a, b) {
		t.Error("two seals of one secret are equal: the nonce is not fresh")
	}
	if bytes.Contains(a, []byte("xoxb")) || bytes.Contains(a, []byte("secret")) {
		t.Errorf("the blob shows the plaintext: %q", a)
	}
	if id, _ := secrets.KeyID(a); id != "k1" {
		t.Errorf("KeyID = %q, want k1", id)
	}
	got, err := k.Open(a, ctx)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

// A blob does not open in another context (another tenant, another column), altered, or truncated.
func TestOpenRefusesWhatWasNotSealedForIt(t *testing.T) {
	k := keyring(t, newSpec(t, "k1"))
	tenant := uuid.New()
	ctx := secrets.For("app.channels.secrets", tenant)
	blob, _ := k.Seal([]byte("hunter2"), ctx)
	for name, tc := range map[string]struct {
		blob []byte
		ctx  secrets.Context
	}{
		"another tenant": {blob, secrets.For("app.channels.secrets", uuid.New())},
		"another column": {blob, secrets.For("app.checks.secrets", tenant)},
		"a flipped bit":  {append(append([]byte{}, blob[:len(blob)-1]...), blob[len(blob)-1]^1), ctx},
		"truncated":      {blob[:10], ctx},
		"empty":          {nil, ctx},
		"not a blob":     {[]byte("hunter2"), ctx},
	} {
		if _, err := k.Open(tc.blob, tc.ctx); !errors.Is(err, secrets.ErrCorrupt) {
			t.Errorf("%s: Open = %v, want ErrCorrupt", name, err)
		}
	}
}

// Rotation: with a new key first and the old one after it, old blobs still open and new ones are sealed
// with the new key; without the old key, its blobs say which key they need.
func TestRotationKeepsOldBlobsOpen(t *testing.T) {
	old, fresh := newSpec(t, "old"), newSpec(t, "new")
	ctx := secrets.For("app.checks.secrets", uuid.New())
	sealedOld, _ := keyring(t, old).Seal([]byte("community"), ctx)

	both := keyring(t, fresh+","+old)
	if got, err := both.Open(sealedOld, ctx); err != nil || string(got) != "community" {
		t.Fatalf("old blob with both keys: %q, %v", got, err)
	}
	resealed, _ := both.Seal([]byte("community"), ctx)
	if id, _ := secrets.KeyID(resealed); id != "new" || both.PrimaryID() != "new" {
		t.Errorf("sealed with %q (primary %q), want new", id, both.PrimaryID())
	}
	_, err := keyring(t, fresh).Open(sealedOld, ctx)
	if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), `"old"`) {
		t.Errorf("old blob without the old key: %v, want ErrUnknownKey naming old", err)
	}
}

// Bad specifications are refused with a reason that never quotes the key.
func TestParseRefusesBadKeys(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	good := newSpec(t, "k1")
	for spec, want := range map[string]string{
		"":                   "no key",
		"k1":                 "want id:base64key",
		"k1:" + short:        "16 bytes",
		"k1:not base64!":     "not base64",
		"bad id:" + good[3:]: "the id",
		good + "," + good:    "twice",
		"x" + strings.Repeat("y", 40) + ":" + good[3:]: "the id",
	} {
		_, err := secrets.Parse(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.20q…) = %v, want an error saying %q", spec, err, want)
			continue
		}
		if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), good[3:]) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
	// Standard and URL-safe base64, padded or not, are all read.
	raw := make([]byte, secrets.KeySize)
	for i := range raw {
		raw[i] = byte(250 + i%6) // bytes whose base64 differs between the alphabets
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if _, err := secrets.Parse("k:" + enc.EncodeToString(raw)); err != nil {
			t.Errorf("Parse of %s: %v", enc.EncodeToString(raw), err)
		}
	}
}

// A server without a key is told what to set, and how to make a key.
func TestConfigRequiresAKey(t *testing.T) {
	err := secrets.DefaultConfig().Validate()
	if err == nil || !strings.Contains(err.Error(), "INFRAWATCH_SECRET_KEY") || !strings.Contains(err.Error(), "openssl rand") {
		t.Fatalf("Validate without a key = %v", err)
	}
	if err := (secrets.Config{Keys: newSpec(t, "k1")}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSealJSONRoundTrip(t *testing.T) {
	k := keyring(t, newSpec(t, "k1"))
	ctx := secrets.For("app.channels.secrets", uuid.New())
	blob, err := k.SealJSON(map[string]string{"bot_token": "123:abc"}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := k.OpenJSON(blob, ctx, &got); err != nil || got["bot_token"] != "123:abc" {
		t.Fatalf("OpenJSON = %v, %v", got, err)
	}
	var none map[string]string
	if err := k.OpenJSON(nil, ctx, &none); err != nil || none != nil {
		t.Fatalf("OpenJSON(nil) = %v, %v", none, err)
	}
}

// Split keeps every secret out of the settings it answers, Join puts each back, and what hides nothing
// (an empty value) stays.
func TestSplitAndJoin(t *testing.T) {
	fields := secrets.Fields{Settings: []string{"community", "body"}, Maps: []string{"headers"}}
	settings := `{"community":"public-secret","body":"","headers":{"Authorization":"Bearer tok","X-Empty":""},"count":3}`
	public, secret, err := secrets.Split([]byte(settings), fields)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(public), "public-secret") || strings.Contains(string(public), "Bearer") {
		t.Errorf("public settings hold a secret: %s", public)
	}
	for _, want := range []string{`"community":"********"`, `"Authorization":"********"`, `"X-Empty":""`, `"body":""`, `"count":3`} {
		if !strings.Contains(string(public), want) {
			t.Errorf("public settings %s lack %s", public, want)
		}
	}
	if want := `{"community":"public-secret","headers":{"Authorization":"Bearer tok"}}`; string(secret) != want {
		t.Errorf("secret = %s, want %s", secret, want)
	}
	joined, err := secrets.Join(public, secret)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"body":"","community":"public-secret","count":3,"headers":{"Authorization":"Bearer tok","X-Empty":""}}`; string(joined) != want {
		t.Errorf("Join = %s, want %s", joined, want)
	}
	if public, secret, _ := secrets.Split([]byte(`{"count":3}`), fields); secret != nil || string(public) != `{"count":3}` {
		t.Errorf("settings without secrets: %s, %s", public, secret)
	}
}

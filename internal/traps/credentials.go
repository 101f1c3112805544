package traps

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// SecretsColumn is the column that holds the sealed passwords of USM users, their sealing context.
const SecretsColumn = secrets.TrapCredentialsColumn

// The kinds of trap credentials.
const (
	KindCommunity = "community" // SNMP v1 and v2c
	KindUSM       = "usm"       // SNMP v3
)

// Bounds of a credential's fields.
const (
	maxNameChars         = 200
	maxCommunityBytes    = 256
	maxUsernameBytes     = 32
	minPasswordBytes     = 8 // RFC 3414 keys need 8 characters; net-snmp refuses fewer
	maxPasswordBytes     = 256
	minEngineIDBytes     = 5
	maxEngineIDBytes     = 32
	levelNoAuthNoPriv    = "noAuthNoPriv"
	levelAuthNoPriv      = "authNoPriv"
	levelAuthPriv        = "authPriv"
	communityDigestLabel = "infrawatch snmp community\x00"
)

var (
	securityLevels = []string{levelNoAuthNoPriv, levelAuthNoPriv, levelAuthPriv}
	authProtocols  = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	privProtocols  = []string{"DES", "AES", "AES192", "AES256", "AES192C", "AES256C"}
)

// CommunityDigest is what is stored of a community, and what an incoming trap's community is looked up
// by. The community itself is never stored; it travels in clear text in every trap anyway.
func CommunityDigest(community string) []byte {
	sum := sha256.Sum256([]byte(communityDigestLabel + community))
	return sum[:]
}

// Problem is one bad field of a credential, named as the API names it.
type Problem struct {
	Field, Message string
}

type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Input is the body of POST and PATCH /api/v1/trap-credentials; fields left out keep their value on
// PATCH. Secrets (community, auth_password, priv_password) sent as the mask keep the stored ones.
type Input struct {
	Name          *string `json:"name"`
	Kind          *string `json:"kind"`
	Community     *string `json:"community"`
	Username      *string `json:"username"`
	EngineID      *string `json:"engine_id"`
	SecurityLevel *string `json:"security_level"`
	AuthProtocol  *string `json:"auth_protocol"`
	AuthPassword  *string `json:"auth_password"`
	PrivProtocol  *string `json:"priv_protocol"`
	PrivPassword  *string `json:"priv_password"`
	Enabled       *bool   `json:"enabled"`
}

// Credential is a trap credential as the API shows it: its secrets are masked.
type Credential struct {
	ID            int64      `json:"id"`
	Name          string     `json:"name"`
	Kind          string     `json:"kind"`
	Community     *string    `json:"community,omitempty"`
	Username      *string    `json:"username,omitempty"`
	EngineID      *string    `json:"engine_id"`
	SecurityLevel *string    `json:"security_level,omitempty"`
	AuthProtocol  *string    `json:"auth_protocol"`
	AuthPassword  *string    `json:"auth_password"`
	PrivProtocol  *string    `json:"priv_protocol"`
	PrivPassword  *string    `json:"priv_password"`
	Enabled       bool       `json:"enabled"`
	CreatedBy     *uuid.UUID `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// Show is a stored credential as the API answers it.
func Show(c dbsqlc.AppTrapCredential) Credential {
	mask := secrets.Mask
	out := Credential{ID: c.ID, Name: c.Name, Kind: c.Kind, Username: c.Username, SecurityLevel: c.SecurityLevel,
		AuthProtocol: c.AuthProtocol, PrivProtocol: c.PrivProtocol, Enabled: c.Enabled, CreatedBy: c.CreatedBy,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.Kind == KindCommunity {
		out.Community = &mask
	}
	if c.EngineID != nil {
		e := hex.EncodeToString(c.EngineID)
		out.EngineID = &e
	}
	if c.AuthProtocol != nil {
		out.AuthPassword = &mask
	}
	if c.PrivProtocol != nil {
		out.PrivPassword = &mask
	}
	return out
}

// usmSecrets are the sealed passwords of a USM user.
type usmSecrets struct {
	AuthPassword string `json:"auth_password,omitempty"`
	PrivPassword string `json:"priv_password,omitempty"`
}

func openSecrets(keys *secrets.Keyring, c dbsqlc.AppTrapCredential) (usmSecrets, error) {
	var s usmSecrets
	if len(c.Secrets) == 0 {
		return s, nil
	}
	plain, err := keys.Open(c.Secrets, secrets.For(SecretsColumn, c.TenantID))
	if err != nil {
		return s, fmt.Errorf("open the secrets of trap credential %d: %w", c.ID, err)
	}
	return s, json.Unmarshal(plain, &s)
}

// Merge applies in over a stored credential (nil: creating one for tenant) and validates the result. It
// returns the row to write — its community digested, its passwords sealed for tenant — or every problem.
// An error is a failure to open or seal secrets.
func (in Input) Merge(keys *secrets.Keyring, tenant uuid.UUID, stored *dbsqlc.AppTrapCredential) (dbsqlc.AppTrapCredential, []Problem, error) {
	var ps problems
	var row dbsqlc.AppTrapCredential
	var kept usmSecrets
	creating := stored == nil
	if creating {
		row = dbsqlc.AppTrapCredential{TenantID: tenant, Enabled: true}
		if in.Name == nil {
			ps.add("name", "is required")
		}
		if in.Kind == nil {
			ps.add("kind", "is required: community (SNMP v1 and v2c) or usm (SNMP v3)")
		} else {
			row.Kind = *in.Kind
		}
	} else {
		row = *stored
		if in.Kind != nil && *in.Kind != row.Kind {
			ps.add("kind", "cannot change; create a new credential instead")
		}
		var err error
		if kept, err = openSecrets(keys, row); err != nil {
			return row, nil, err
		}
	}
	if in.Name != nil {
		row.Name = *in.Name
	}
	if in.Enabled != nil {
		row.Enabled = *in.Enabled
	}
	if n := utf8.RuneCountInString(row.Name); n < 1 || n > maxNameChars || !storable(row.Name) {
		ps.add("name", "must be 1 to %d characters of UTF-8 without NUL", maxNameChars)
	}
	switch row.Kind {
	case KindCommunity:
		for field, v := range map[string]*string{"username": in.Username, "engine_id": in.EngineID, "security_level": in.SecurityLevel,
			"auth_protocol": in.AuthProtocol, "auth_password": in.AuthPassword, "priv_protocol": in.PrivProtocol, "priv_password": in.PrivPassword} {
			if v != nil {
				ps.add(field, "is not a field of community credentials (those are for SNMP v3: kind usm)")
			}
		}
		switch {
		case in.Community == nil && creating:
			ps.add("community", "is required")
		case in.Community == nil || *in.Community == secrets.Mask && !creating:
			// kept
		case *in.Community == secrets.Mask:
			ps.add("community", "is the mask %s but there is no stored community to keep; send the community itself", secrets.Mask)
		case *in.Community == "" || len(*in.Community) > maxCommunityBytes || !storable(*in.Community):
			ps.add("community", "must be 1 to %d bytes of UTF-8 without NUL", maxCommunityBytes)
		default:
			row.CommunityDigest = CommunityDigest(*in.Community)
		}
	case KindUSM:
		if in.Community != nil {
			ps.add("community", "is not a field of usm credentials (communities are kind community)")
		}
		mergeUSM(&ps, in, &row, &kept)
	default:
		if !creating || in.Kind != nil {
			ps.add("kind", "must be community (SNMP v1 and v2c) or usm (SNMP v3)")
		}
	}
	if len(ps) > 0 {
		slices.SortFunc(ps, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
		return row, ps, nil
	}
	row.Secrets = nil
	if kept != (usmSecrets{}) {
		plain, _ := json.Marshal(kept)
		sealed, err := keys.Seal(plain, secrets.For(SecretsColumn, tenant))
		if err != nil {
			return row, nil, err
		}
		row.Secrets = sealed
	}
	return row, nil, nil
}

// mergeUSM applies the USM fields of in over row, keeping (in kept) the passwords the level needs.
func mergeUSM(ps *problems, in Input, row *dbsqlc.AppTrapCredential, kept *usmSecrets) {
	if in.Username != nil {
		row.Username = in.Username
	}
	if row.Username == nil {
		ps.add("username", "is required")
	} else if u := *row.Username; u == "" || len(u) > maxUsernameBytes || !storable(u) {
		ps.add("username", "must be 1 to %d bytes of UTF-8 without NUL", maxUsernameBytes)
	}
	if in.EngineID != nil {
		row.EngineID = nil
		if e := strings.TrimPrefix(strings.TrimPrefix(*in.EngineID, "0x"), "0X"); e != "" {
			raw, err := hex.DecodeString(e)
			if err != nil || len(raw) < minEngineIDBytes || len(raw) > maxEngineIDBytes {
				ps.add("engine_id", "must be %d to %d bytes in hexadecimal (8000…), or empty for any engine", minEngineIDBytes, maxEngineIDBytes)
			} else {
				row.EngineID = raw
			}
		}
	}
	if in.SecurityLevel != nil {
		row.SecurityLevel = in.SecurityLevel
	}
	if row.SecurityLevel == nil {
		ps.add("security_level", "is required: noAuthNoPriv, authNoPriv or authPriv")
		return
	}
	level := *row.SecurityLevel
	if !slices.Contains(securityLevels, level) {
		ps.add("security_level", "must be noAuthNoPriv, authNoPriv or authPriv")
		return
	}
	if in.AuthProtocol != nil {
		row.AuthProtocol = in.AuthProtocol
	}
	if in.PrivProtocol != nil {
		row.PrivProtocol = in.PrivProtocol
	}
	password := func(field string, in *string, kept *string) {
		switch {
		case in == nil || *in == secrets.Mask && *kept != "":
			if *kept == "" {
				ps.add(field, "is required at security level %s", level)
			}
		case *in == secrets.Mask:
			ps.add(field, "is the mask %s but there is no stored password to keep; send the password itself", secrets.Mask)
		case len(*in) < minPasswordBytes || len(*in) > maxPasswordBytes || !storable(*in):
			ps.add(field, "must be %d to %d bytes of UTF-8 without NUL", minPasswordBytes, maxPasswordBytes)
		default:
			*kept = *in
		}
	}
	if level == levelNoAuthNoPriv {
		if in.AuthProtocol != nil || in.AuthPassword != nil {
			ps.add("auth_protocol", "is not used at security level noAuthNoPriv")
		}
		row.AuthProtocol, kept.AuthPassword = nil, ""
	} else {
		if row.AuthProtocol == nil || !slices.Contains(authProtocols, *row.AuthProtocol) {
			ps.add("auth_protocol", "must be one of %s", strings.Join(authProtocols, ", "))
		}
		password("auth_password", in.AuthPassword, &kept.AuthPassword)
	}
	if level != levelAuthPriv {
		if in.PrivProtocol != nil || in.PrivPassword != nil {
			ps.add("priv_protocol", "is used at security level authPriv only")
		}
		row.PrivProtocol, kept.PrivPassword = nil, ""
	} else {
		if row.PrivProtocol == nil || !slices.Contains(privProtocols, *row.PrivProtocol) {
			ps.add("priv_protocol", "must be one of %s", strings.Join(privProtocols, ", "))
		}
		password("priv_password", in.PrivPassword, &kept.PrivPassword)
	}
}

// storable reports whether PostgreSQL can store s as text: valid UTF-8 without NUL.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

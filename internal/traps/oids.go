package traps

import (
	"strconv"
	"strings"
)

// oidName is a name of the built-in table: an object or a notification of a standard MIB.
type oidName struct {
	name string
	// severity is the stored severity of a trap of this notification; empty: warning.
	severity string
	// enum names the values of an enumerated object (IF-MIB's ifOperStatus).
	enum map[int]string
}

var ifStatus = map[int]string{1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}

// oidNames is the small built-in table of standard MIBs that names varbinds and traps: SNMPv2-MIB (the
// system group, the trap's own objects and the generic traps), SNMP-COMMUNITY-MIB's snmpTrapAddress,
// IF-MIB, ENTITY-MIB, BGP4-MIB, DISMAN-EVENT-MIB, and NET-SNMP's agent notifications. An OID under an
// entry is named by it with the rest as its instance (ifOperStatus.3); one under none keeps its number.
var oidNames = map[string]oidName{
	// SNMPv2-MIB: system.
	"1.3.6.1.2.1.1.1": {name: "sysDescr"},
	"1.3.6.1.2.1.1.2": {name: "sysObjectID"},
	"1.3.6.1.2.1.1.3": {name: "sysUpTime"},
	"1.3.6.1.2.1.1.4": {name: "sysContact"},
	"1.3.6.1.2.1.1.5": {name: "sysName"},
	"1.3.6.1.2.1.1.6": {name: "sysLocation"},
	// SNMPv2-MIB: what a v2c or v3 trap says of itself.
	"1.3.6.1.6.3.1.1.4.1": {name: "snmpTrapOID"},
	"1.3.6.1.6.3.1.1.4.3": {name: "snmpTrapEnterprise"},
	"1.3.6.1.6.3.18.1.3":  {name: "snmpTrapAddress"},
	"1.3.6.1.6.3.18.1.4":  {name: "snmpTrapCommunity"},
	// SNMPv2-MIB: the generic traps.
	"1.3.6.1.6.3.1.1.5.1": {name: "coldStart", severity: "notice"},
	"1.3.6.1.6.3.1.1.5.2": {name: "warmStart", severity: "notice"},
	"1.3.6.1.6.3.1.1.5.3": {name: "linkDown", severity: "warning"},
	"1.3.6.1.6.3.1.1.5.4": {name: "linkUp", severity: "notice"},
	"1.3.6.1.6.3.1.1.5.5": {name: "authenticationFailure", severity: "warning"},
	"1.3.6.1.6.3.1.1.5.6": {name: "egpNeighborLoss", severity: "warning"},
	// IF-MIB.
	"1.3.6.1.2.1.2.2.1.1":     {name: "ifIndex"},
	"1.3.6.1.2.1.2.2.1.2":     {name: "ifDescr"},
	"1.3.6.1.2.1.2.2.1.3":     {name: "ifType"},
	"1.3.6.1.2.1.2.2.1.5":     {name: "ifSpeed"},
	"1.3.6.1.2.1.2.2.1.7":     {name: "ifAdminStatus", enum: ifStatus},
	"1.3.6.1.2.1.2.2.1.8":     {name: "ifOperStatus", enum: ifStatus},
	"1.3.6.1.2.1.2.2.1.9":     {name: "ifLastChange"},
	"1.3.6.1.2.1.31.1.1.1.1":  {name: "ifName"},
	"1.3.6.1.2.1.31.1.1.1.18": {name: "ifAlias"},
	// ENTITY-MIB.
	"1.3.6.1.2.1.47.2.0.1": {name: "entConfigChange", severity: "notice"},
	// BGP4-MIB.
	"1.3.6.1.2.1.15.3.1.2":  {name: "bgpPeerState"},
	"1.3.6.1.2.1.15.3.1.7":  {name: "bgpPeerRemoteAddr"},
	"1.3.6.1.2.1.15.3.1.14": {name: "bgpPeerLastError"},
	"1.3.6.1.2.1.15.7.1":    {name: "bgpEstablished", severity: "notice"},
	"1.3.6.1.2.1.15.7.2":    {name: "bgpBackwardTransition", severity: "warning"},
	// DISMAN-EVENT-MIB.
	"1.3.6.1.2.1.88.2.0.1": {name: "mteTriggerFired"},
	"1.3.6.1.2.1.88.2.0.2": {name: "mteTriggerRising"},
	"1.3.6.1.2.1.88.2.0.3": {name: "mteTriggerFalling"},
	"1.3.6.1.2.1.88.2.1.1": {name: "mteHotTrigger"},
	"1.3.6.1.2.1.88.2.1.4": {name: "mteHotOID"},
	"1.3.6.1.2.1.88.2.1.5": {name: "mteHotValue"},
	// NET-SNMP-AGENT-MIB and NET-SNMP-EXAMPLES-MIB (what snmpd and snmptrap's examples send).
	"1.3.6.1.4.1.8072.4.0.1":   {name: "nsNotifyStart", severity: "notice"},
	"1.3.6.1.4.1.8072.4.0.2":   {name: "nsNotifyShutdown", severity: "warning"},
	"1.3.6.1.4.1.8072.4.0.3":   {name: "nsNotifyRestart", severity: "notice"},
	"1.3.6.1.4.1.8072.2.3.0.1": {name: "netSnmpExampleHeartbeatNotification", severity: "info"},
	"1.3.6.1.4.1.8072.2.3.2.1": {name: "netSnmpExampleHeartbeatRate"},
	"1.3.6.1.4.1.8072.2.3.2.2": {name: "netSnmpExampleHeartbeatName"},
	"1.3.6.1.4.1.8072.3.2.10":  {name: "netSnmpAgentLinux"},
}

// Well-known OIDs the receiver reads.
const (
	oidSysUpTime       = "1.3.6.1.2.1.1.3.0"
	oidSnmpTrapOID     = "1.3.6.1.6.3.1.1.4.1.0"
	oidSnmpTrapAddress = "1.3.6.1.6.3.18.1.3.0"
	oidGenericTraps    = "1.3.6.1.6.3.1.1.5"
)

// lookupOID names an OID (with or without a leading dot) from the built-in table: the longest entry
// it starts with, and the rest as the instance. ok is false when no entry matches; name is then the
// OID's number.
func lookupOID(oid string) (name string, entry oidName, ok bool) {
	oid = strings.TrimPrefix(oid, ".")
	for prefix := oid; prefix != ""; {
		if e, found := oidNames[prefix]; found {
			if rest := oid[len(prefix):]; rest != "" {
				return e.name + rest, e, true
			}
			return e.name, e, true
		}
		i := strings.LastIndexByte(prefix, '.')
		if i < 0 {
			break
		}
		prefix = prefix[:i]
	}
	return oid, oidName{}, false
}

// v1TrapOID is the snmpTrapOID a v1 trap maps to (RFC 3584 §3.1): a generic trap's own OID, or the
// enterprise, 0 and the specific trap.
func v1TrapOID(enterprise string, generic, specific int) string {
	if generic >= 0 && generic <= 5 {
		return oidGenericTraps + "." + strconv.Itoa(generic+1)
	}
	return strings.TrimPrefix(enterprise, ".") + ".0." + strconv.Itoa(specific)
}

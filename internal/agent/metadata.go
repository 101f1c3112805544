package agent

import (
	"bufio"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/shirou/gopsutil/v4/host"
)

// HostMetadata describes the machine for host.metadata. It is best effort: what cannot be read is left out.
func HostMetadata() map[string]string {
	md := map[string]string{}
	if info, err := host.Info(); err == nil {
		md["os"] = info.OS
		md["platform"] = info.Platform
		md["platform_version"] = info.PlatformVersion
		md["kernel"] = info.KernelVersion
		md["arch"] = info.KernelArch
		if info.VirtualizationSystem != "" {
			md["virtualization"] = info.VirtualizationSystem + "/" + info.VirtualizationRole
		}
	}
	if m := cpuModel("/proc/cpuinfo"); m != "" {
		md["cpu_model"] = m
	}
	if ips := hostIPs(); len(ips) > 0 {
		md["ips"] = joinWithin(ips, ",", MaxMetadataValueBytes-2)
	}
	for k, v := range md {
		if v == "" {
			delete(md, k)
		}
	}
	return md
}

func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func hostIPs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, ipn.IP.String())
		}
	}
	sort.Strings(out)
	return out
}

// joinWithin joins as many of parts as fit in limit bytes (a node with hundreds of addresses would
// otherwise send a value the server refuses, and with it every batch).
func joinWithin(parts []string, sep string, limit int) string {
	n := 0
	for i, p := range parts {
		if n+len(sep)+len(p) > limit {
			parts = parts[:i]
			break
		}
		n += len(sep) + len(p)
	}
	return strings.Join(parts, sep)
}

package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
)

// pseudoFilesystems have no backing storage worth alerting on.
var pseudoFilesystems = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devtmpfs": true, "devpts": true, "overlay": true,
	"squashfs": true, "securityfs": true, "debugfs": true, "tracefs": true, "configfs": true,
	"fusectl": true, "mqueue": true, "hugetlbfs": true, "pstore": true, "bpf": true, "autofs": true,
	"binfmt_misc": true, "rpc_pipefs": true, "nsfs": true, "ramfs": true, "efivarfs": true, "fuse.lxcfs": true,
	"selinuxfs": true, "nfsd": true, "shm": true, "none": true,
}

func isPseudoFS(fstype string) bool {
	return pseudoFilesystems[fstype] || strings.HasPrefix(fstype, "cgroup")
}

// filesystemCollector reports space and inode usage per mounted, storage-backed filesystem.
type filesystemCollector struct{}

func (filesystemCollector) Name() string { return "disk" }

func (filesystemCollector) Collect(now time.Time) ([]Metric, error) {
	parts, err := disk.Partitions(false)
	if err != nil {
		return nil, fmt.Errorf("list filesystems: %w", err)
	}
	var out []Metric
	seen := map[string]bool{}
	for _, p := range parts {
		if isPseudoFS(p.Fstype) || seen[p.Mountpoint] {
			continue
		}
		seen[p.Mountpoint] = true
		u, err := disk.Usage(p.Mountpoint)
		if err != nil || u.Total == 0 {
			continue // unreadable (permissions, stale NFS) or empty: skip rather than fail the round
		}
		l := map[string]string{"mount": p.Mountpoint, "device": p.Device, "fstype": p.Fstype}
		out = append(out,
			gauge("disk.total_bytes", l, now, float64(u.Total)),
			gauge("disk.used_bytes", l, now, float64(u.Used)),
			gauge("disk.free_bytes", l, now, float64(u.Free)),
			gauge("disk.used_pct", l, now, u.UsedPercent),
		)
		if u.InodesTotal > 0 {
			out = append(out,
				gauge("disk.inodes_total", l, now, float64(u.InodesTotal)),
				gauge("disk.inodes_used", l, now, float64(u.InodesUsed)),
				gauge("disk.inodes_used_pct", l, now, u.InodesUsedPercent),
			)
		}
	}
	return out, nil
}

// diskIOCollector reports throughput, operations and busy time per block device.
type diskIOCollector struct {
	rates *counterRates
}

func newDiskIOCollector() *diskIOCollector { return &diskIOCollector{rates: newCounterRates()} }

func (c *diskIOCollector) Name() string { return "diskio" }

func (c *diskIOCollector) Collect(now time.Time) ([]Metric, error) {
	counters, err := disk.IOCounters()
	if err != nil {
		return nil, fmt.Errorf("read disk counters: %w", err)
	}
	var out []Metric
	for name, s := range counters {
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") {
			continue
		}
		l := map[string]string{"device": name}
		add := func(metric string, v uint64, scale float64) {
			if r, ok := c.rates.rate(name+"/"+metric, v, now); ok {
				out = append(out, gauge(metric, l, now, r*scale))
			}
		}
		add("diskio.read_bytes_per_s", s.ReadBytes, 1)
		add("diskio.write_bytes_per_s", s.WriteBytes, 1)
		add("diskio.read_ops_per_s", s.ReadCount, 1)
		add("diskio.write_ops_per_s", s.WriteCount, 1)
		// IoTime is milliseconds spent doing I/O; ms per second / 1000 * 100 = percent busy.
		if r, ok := c.rates.rate(name+"/iotime", s.IoTime, now); ok {
			out = append(out, gauge("diskio.util_pct", l, now, min(r/10, 100)))
		}
	}
	return out, nil
}

package maintenance_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/maintenance"
)

// The retention flags carry the documented defaults, the flags of two tiers set both (raw samples and
// raw check results share --retention-raw), and Validate names the flags that disagree.
func TestConfigFlags(t *testing.T) {
	parse := func(args ...string) maintenance.Config {
		t.Helper()
		cfg := maintenance.DefaultConfig()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	defaults := parse()
	r := defaults.Retention
	if r.Samples != 30*day || r.CheckResults != 30*day || r.Samples5m != 90*day || r.Samples1h != 730*day ||
		r.CheckResults1h != 730*day || r.Samples1d != 1825*day || r.CheckResults1d != 1825*day || r.Logs != 30*day ||
		defaults.CompressAfter != 7*day || defaults.TimescaleJobs != maintenance.ModeAuto {
		t.Errorf("defaults: %+v", defaults)
	}
	if err := defaults.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}

	set := parse("--retention-raw", "10d", "--retention-1h", "40d", "--retention-1d", "80d", "--retention-logs", "36h", "--compress-after", "3d",
		"--timescale-jobs", "infrawatch")
	r = set.Retention
	if r.Samples != 10*day || r.CheckResults != 10*day || r.Samples1h != 40*day || r.CheckResults1h != 40*day ||
		r.Samples1d != 80*day || r.CheckResults1d != 80*day || r.Logs != 36*time.Hour || set.CompressAfter != 3*day ||
		set.TimescaleJobs != maintenance.ModeInfrawatch {
		t.Errorf("after flags: %+v", set)
	}

	// --timescale-jobs takes its three modes only, at parsing and in Validate.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bad := maintenance.DefaultConfig()
	bad.AddFlags(fs)
	if err := fs.Parse([]string{"--timescale-jobs", "sometimes"}); err == nil || !strings.Contains(err.Error(), "want auto, timescaledb or infrawatch") {
		t.Errorf("--timescale-jobs sometimes: %v, want a refusal naming the modes", err)
	}
	bad.TimescaleJobs = "sometimes"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--timescale-jobs must be auto, timescaledb or infrawatch") {
		t.Errorf("Validate with mode %q: %v, want the flag named", bad.TimescaleJobs, err)
	}
	if err := (maintenance.Config{}).Validate(); err != nil {
		t.Errorf("zero Config (defaults): %v", err)
	}

	err := parse("--retention-raw", "100d").Validate()
	if want := "--retention-5m (90d) must be at least --retention-raw (100d)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("raw kept longer than its 5-minute rollup: %v, want %q", err, want)
	}
	err = parse("--retention-raw", "1d", "--retention-5m", "1d", "--retention-1h", "2d").Validate()
	if want := "--retention-1h (2d) must be at least 3 days"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("hourly tier of 2 days: %v, want %q", err, want)
	}
}

package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, []byte("server: http://file\ninterval: 30s\napi_key: filekey\nlabels: {env: file, a: b}\nlogs: [{path: /x/*.log, source: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"INFRAWATCH_AGENT_SERVER": "http://env", "INFRAWATCH_AGENT_INTERVAL": "20s"}
	cfg, err := LoadConfig("t", []string{"--config", p, "--interval", "5s", "--label", "env=flag"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "http://env" || cfg.Interval != 5*time.Second || cfg.Labels["env"] != "flag" || cfg.Labels["a"] != "b" || len(cfg.Logs) != 1 {
		t.Fatalf("got %+v", cfg)
	}
	if err := cfg.Validate(true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cfg.String(), "filekey") {
		t.Fatal("api key printed")
	}
	bad, _ := LoadConfig("t", []string{"--collectors", "cpu,gpu", "--interval", "10ms", "--hostname", strings.Repeat("h", 256),
		"--label", "env=" + strings.Repeat("v", 1025)}, func(string) string { return "" })
	err = bad.Validate(true)
	for _, want := range []string{"server", "api_key", "interval", "gpu", "hostname", "labels.env"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error %v does not mention %s", err, want)
		}
	}
}

// Every flag has its INFRAWATCH_AGENT_* variable; labels add up from the file, the variable and the
// flags, the later winning for a key; an empty variable is as good as unset; a bad value names its
// variable.
func TestConfigEnvironment(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, []byte("server: http://file\nlabels: {a: file, z: file}\nspool_dir: /file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"INFRAWATCH_AGENT_CONFIG":          p,
		"INFRAWATCH_AGENT_SERVER":          "", // empty: the file's stays
		"INFRAWATCH_AGENT_LABELS":          "a=env, b=env",
		"INFRAWATCH_AGENT_COLLECTORS":      "cpu, mem",
		"INFRAWATCH_AGENT_SPOOL_MAX_BYTES": "2097152",
		"INFRAWATCH_AGENT_HOSTNAME":        "env-host",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := LoadConfig("t", []string{"--labels", "b=flag,c=flag", "--label", "d=flag", "--spool-dir", "/flag"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "env", "b": "flag", "c": "flag", "d": "flag", "z": "file"}
	if cfg.Server != "http://file" || cfg.Hostname != "env-host" || cfg.SpoolDir != "/flag" || cfg.SpoolMaxBytes != 2<<20 ||
		strings.Join(cfg.Collectors, ",") != "cpu,mem" || fmt.Sprint(cfg.Labels) != fmt.Sprint(want) {
		t.Errorf("got %+v, want server from the file, host from the environment, spool dir from the flag, labels %v", cfg, want)
	}
	env["INFRAWATCH_AGENT_INTERVAL"] = "often"
	if _, err := LoadConfig("t", nil, getenv); err == nil || !strings.Contains(err.Error(), "INFRAWATCH_AGENT_INTERVAL") {
		t.Errorf("a bad interval in the environment: %v, want an error naming INFRAWATCH_AGENT_INTERVAL", err)
	}
	if _, err := LoadConfig("t", []string{"--interval", "5s", "stray"}, getenv); err == nil {
		t.Error("a stray argument: no error")
	}
}

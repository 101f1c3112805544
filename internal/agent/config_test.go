package agent

import (
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

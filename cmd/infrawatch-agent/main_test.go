package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/infrawatch/infrawatch/internal/agent"
)

func TestCheckConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := agent.Main([]string{"check-config", "--server", "http://x", "--api-key", "secret"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatal("api key printed")
	}
	out.Reset()
	if code := agent.Main([]string{"check-config"}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "server") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}

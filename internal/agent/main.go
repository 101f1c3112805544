package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `usage: infrawatch-agent <command> [flags]

commands:
  run           collect, tail logs and push until SIGTERM/SIGINT
  once          collect one round and print the JSON that would be sent
  check-config  validate the configuration and print problems

flags: --config --server --api-key --interval --hostname --label k=v --labels k=v,k=v --collectors --spool-dir
       --spool-max-bytes
environment: INFRAWATCH_AGENT_<FLAG> (e.g. INFRAWATCH_AGENT_API_KEY); flags win over env over the file
`

// Main is the whole command line; it returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	cfg, err := LoadConfig("infrawatch-agent "+cmd, rest, os.Getenv)
	if err != nil && cmd != "help" {
		fmt.Fprintf(stderr, "infrawatch-agent: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	switch cmd {
	case "check-config":
		if err := cfg.Validate(true); err != nil {
			fmt.Fprintf(stdout, "configuration problems:\n%v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "configuration ok\n%s", cfg)
		return 0
	case "once":
		if err := cfg.Validate(false); err != nil {
			// once does not send, but a broken collector list still matters
			if _, cerr := NewCollectors(cfg.Collectors); cerr != nil {
				fmt.Fprintf(stderr, "infrawatch-agent: %v\n", cerr)
				return 1
			}
		}
		cols, _ := NewCollectors(cfg.Collectors)
		a := &Agent{cfg: cfg, log: logger, collectors: cols, spool: &Spool{},
			host: Host{Name: cfg.Hostname, Labels: cfg.Labels, Metadata: HostMetadata()}}
		for _, c := range cols { // rates need two samples
			_, _ = c.Collect(time.Now())
		}
		time.Sleep(time.Second)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(a.Collect(time.Now())); err != nil {
			fmt.Fprintf(stderr, "infrawatch-agent: %v\n", err)
			return 1
		}
		return 0
	case "run":
		if err := cfg.Validate(true); err != nil {
			fmt.Fprintf(stderr, "infrawatch-agent: invalid configuration:\n%v\n", err)
			return 1
		}
		a, err := New(cfg, Options{Logger: logger})
		if err != nil {
			fmt.Fprintf(stderr, "infrawatch-agent: %v\n", err)
			return 1
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		logger.Info("agent started", "server", cfg.Server, "host", cfg.Hostname, "interval", cfg.Interval, "spool", cfg.SpoolDir)
		if err := a.Run(ctx); err != nil {
			fmt.Fprintf(stderr, "infrawatch-agent: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
}

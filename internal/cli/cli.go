// Package cli implements the infrawatch command line: it parses flags and INFRAWATCH_* environment
// variables, builds the dependencies, and runs one command. It holds no business logic of its own.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/infrawatch/infrawatch/internal/flagenv"
)

// command is one subcommand of infrawatch.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a command gets from the process.
type environment struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stdinIsTerm    bool
}

func commands() []command {
	return []command{
		{"serve", "run the server (all roles unless --roles says otherwise)", runServe},
		{"migrate", "apply, revert or inspect the database schema: migrate up|down|status", runMigrate},
		{"tenant", "manage tenants as the operator: tenant create --name NAME --admin-email EMAIL [--admin-password P] | tenant limits --tenant SLUG [--set key=value ...]", runTenant},
		{"keys", "manage the keys that sign access tokens: keys rotate", runKeys},
		{"secrets", "manage the keys that seal secrets at rest: secrets rotate | secrets new-key", runSecrets},
		{"report", "render a scheduled SLA report's files for a period without sending: report render --report ID --period 2026-11 --out DIR", runReport},
		{"dev", "run everything locally: a PostgreSQL cluster under --data-dir, migrated, seeded and served", runDev},
		{"healthcheck", "exit 0 when the server at --url answers its readiness probe (for container health checks)", runHealthcheck},
	}
}

// Run executes the command line args and returns the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &environment{stdin: stdin, stdout: stdout, stderr: stderr, stdinIsTerm: isTerminal(stdin)}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "infrawatch %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "infrawatch: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// splitAction takes the action word (`up` in `migrate up --flavor x`) off the front of args, if there is one.
func splitAction(args []string) (action string, rest []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// errUsage means the command already printed what was wrong with its arguments.
var errUsage = errors.New("usage error")

func usage(w io.Writer) {
	fmt.Fprintln(w, "infrawatch — multi-tenant infrastructure monitoring backend\n\nUsage: infrawatch <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set by an environment variable: --database-url is INFRAWATCH_DATABASE_URL.\n"+
		"Run `infrawatch <command> --help` for a command's flags.")
}

// newFlagSet returns a flag set whose help lists each flag's environment variable.
func newFlagSet(env *environment, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stdout, "Usage: infrawatch %s\n\nFlags (in brackets: the environment variable that sets it too):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			from := " [" + flagenv.Name(envPrefix, f.Name) + "]"
			if oneShotFlags[f.Name] {
				from = ""
			}
			fmt.Fprintf(env.stdout, "  --%s%s\n        %s%s\n", f.Name, from, f.Usage, def)
		})
	}
	return fs
}

// envPrefix starts the environment variable of every flag: --database-url is INFRAWATCH_DATABASE_URL.
const envPrefix = "INFRAWATCH_"

// oneShotFlags answer a single invocation and are never read from the environment: an INFRAWATCH_YES
// left in a shell must not confirm a later `migrate down`.
// Nor may an INFRAWATCH_SET change a tenant's limits.
var oneShotFlags = map[string]bool{"yes": true, "steps": true, "set": true, "tenant": true}

// parseFlags parses args, then fills every flag not given on the command line from its environment
// variable. Command-line flags win over the environment.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return flagenv.Fill(fs, envPrefix, os.LookupEnv, slices.Collect(maps.Keys(oneShotFlags))...)
}

// newLogger returns a JSON logger (text when human is true, for `infrawatch dev`).
func newLogger(w io.Writer, level string, human bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if human {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

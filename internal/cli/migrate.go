package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/infrawatch/infrawatch/internal/db"
)

func runMigrate(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "migrate", "migrate up|down|status [flags]\n\n"+
		"  up      apply every pending migration; on a new database, build the storage flavor\n"+
		"          (timescale when TimescaleDB is installed and preloaded, else postgres; --flavor forces one)\n"+
		"  down    revert every migration, or the last --steps N; this deletes data. On a terminal it asks\n"+
		"          first; --yes skips the question\n"+
		"  status  print the storage flavor, the schema version and whether the schema is dirty")
	dbConfig := db.DefaultConfig()
	dbConfig.AddURLFlag(fs)
	flavorFlag := fs.String("flavor", "", "storage flavor for up on a new database: timescale or postgres (empty: detect)")
	steps := fs.Int("steps", 0, "down: revert only the last N migrations (0 means all)")
	yes := fs.Bool("yes", false, "down: do not ask for confirmation")

	action, args := splitAction(args)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if action == "" && fs.NArg() > 0 {
		action = fs.Arg(0)
	}
	if *steps < 0 {
		return errors.New("--steps must be zero or more")
	}
	flavor, err := db.ParseFlavor(*flavorFlag)
	if err != nil {
		return err
	}
	if err := dbConfig.Validate(); err != nil {
		return err
	}
	m := db.NewMigrator(dbConfig.URL)

	switch action {
	case "up":
		built, err := m.Up(ctx, flavor)
		if err != nil {
			return err
		}
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "schema at version %d, %s flavor\n", st.Version, built)
		return nil
	case "down":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		if st.Version == 0 {
			fmt.Fprintln(env.stdout, "nothing to revert: no migration is applied")
			return nil
		}
		what := "every migration, deleting all infrawatch data"
		if *steps > 0 {
			what = fmt.Sprintf("the last %d migration(s)", *steps)
		}
		if env.stdinIsTerm && !*yes {
			fmt.Fprintf(env.stdout, "This reverts %s of %s.\nType yes to continue: ", what, db.RedactURL(dbConfig.URL))
			answer, _ := bufio.NewReader(env.stdin).ReadString('\n')
			if strings.TrimSpace(answer) != "yes" {
				return errors.New("not confirmed; nothing changed")
			}
		}
		if err := m.Down(ctx, *steps); err != nil {
			return err
		}
		st, err = m.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "schema at version %d\n", st.Version)
		return nil
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		flavorText := string(st.Flavor)
		if flavorText == "" {
			flavorText = "none (no migration applied)"
		}
		state := "current"
		switch {
		case st.Dirty:
			state = "dirty: a migration failed half-way; repair the schema by hand before migrating again"
		case st.Version < st.Latest:
			state = fmt.Sprintf("%d migration(s) pending; run `infrawatch migrate up`", st.Latest-st.Version)
		case st.Version > st.Latest:
			state = "newer than this binary; upgrade infrawatch"
		}
		fmt.Fprintf(env.stdout, "flavor:  %s\nversion: %d (this binary carries up to %d)\ndirty:   %t\nstate:   %s\n",
			flavorText, st.Version, st.Latest, st.Dirty, state)
		return nil
	case "":
		fs.Usage()
		return errUsage
	}
	return fmt.Errorf("unknown action %q: use up, down or status", action)
}

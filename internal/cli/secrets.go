package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

// runSecrets manages the keys that seal secrets at rest: `secrets rotate` seals every stored secret with
// the first key of --secret-key, `secrets new-key` prints a new key to put first.
func runSecrets(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "secrets", "secrets rotate | secrets new-key [--id ID]\n\n"+
		"rotate: seal every secret in the database (channels, checks) with the first key of --secret-key; every\n"+
		"key given opens. To rotate: put a new key first (INFRAWATCH_SECRET_KEY=new:…,old:…) on every server,\n"+
		"run secrets rotate, then drop the old key.\n"+
		"new-key: print a new random key as --secret-key takes it.")
	dbConfig := db.DefaultConfig()
	dbConfig.AddURLFlag(fs)
	keyConfig := secrets.DefaultConfig()
	keyConfig.AddFlags(fs)
	id := fs.String("id", "", "new-key: the new key's id (default: k and the date, k20260101)")
	action, args := splitAction(args)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch action {
	case "new-key":
		if *id == "" {
			*id = "k" + time.Now().UTC().Format("20060102")
		}
		spec, err := secrets.NewKeySpec(*id)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, spec)
		return nil
	case "rotate":
	default:
		fs.Usage()
		return errUsage
	}
	if err := dbConfig.Validate(); err != nil {
		return err
	}
	if err := keyConfig.Validate(); err != nil {
		return err
	}
	keys, err := keyConfig.Keyring()
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	done, err := secrets.Reseal(ctx, db.NewSystem(pool), keys, false)
	if err != nil {
		return fmt.Errorf("rotate (sealed anew so far: %d channels, %d checks, %d trap credentials): %w", done.Channels, done.Checks,
			done.TrapCredentials, err)
	}
	fmt.Fprintf(env.stdout, "sealed with key %s: %d channels, %d checks, %d trap credentials; the other keys may go once every server has the new one first\n",
		keys.PrimaryID(), done.Channels, done.Checks, done.TrapCredentials)
	return nil
}

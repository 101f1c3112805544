// Package flagenv fills the flags that a command line did not set from environment variables named
// after them (--database-url from INFRAWATCH_DATABASE_URL): a flag on the command line wins over its
// variable, which wins over the flag's default. The server (internal/cli) and the agent both use it; it
// must stay small and import nothing of infrawatch, since the agent's binary carries it.
package flagenv

import (
	"flag"
	"fmt"
	"strings"
)

// Name is the environment variable of a flag: prefix, then the flag's name in upper case with each
// hyphen an underscore.
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Fill sets every flag of fs that the command line did not set (fs is parsed already) from its
// environment variable, as lookup finds it (os.LookupEnv, or one that treats an empty variable as
// unset). Flags named in skip are never read from the environment: those that answer a single
// invocation, such as a confirmation. The first bad value is the error, naming its variable.
func Fill(fs *flag.FlagSet, prefix string, lookup func(string) (string, bool), skip ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range skip {
		given[name] = true
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		variable := Name(prefix, f.Name)
		if v, ok := lookup(variable); ok {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("environment variable %s: %w", variable, setErr)
			}
		}
	})
	return err
}

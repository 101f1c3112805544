// Command infrawatch is the infrawatch server: API, ingest, pollers, alerter and scheduler in one
// binary, chosen by flags; plus migrations and a self-contained development mode.
package main

import (
	"os"

	"github.com/infrawatch/infrawatch/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

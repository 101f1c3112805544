// Command infrawatch-agent collects host metrics and logs and pushes them to infrawatch.
package main

import (
	"os"

	"github.com/infrawatch/infrawatch/internal/agent"
)

func main() {
	os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Package reports holds the templates and wording of the scheduled SLA reports, embedded in the binary;
// internal/reports renders them. README.md here says what each file is.
package reports

import "embed"

// FS holds the templates (*.tmpl) and the wording of each language (strings.json).
//
//go:embed *.tmpl strings.json
var FS embed.FS

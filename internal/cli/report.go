package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/reports"
)

// runReport renders a scheduled report's files for one period into a directory, for a preview, without
// sending anything: report.html (its images as files beside it), report.txt, and the CSV and PDF the
// report attaches.
func runReport(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "report", "report render --report ID --period 2026-11 --out DIR")
	dbConfig := db.DefaultConfig()
	dbConfig.AddURLFlag(fs)
	id := fs.Int64("report", 0, "the report's id (required)")
	period := fs.String("period", "", "the period: 2026-11 (monthly), 2026-W47 (weekly) or 2026-11-28 (daily), in the tenant's time zone (required)")
	out := fs.String("out", "", "the directory to write the files to; made if missing (required)")
	action, args := splitAction(args)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if action != "render" {
		fs.Usage()
		return errUsage
	}
	if *id <= 0 || *period == "" || *out == "" {
		return errors.New("report render: --report, --period and --out are required")
	}
	if err := dbConfig.Validate(); err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	p, err := reports.Prepare(ctx, db.NewSystem(pool), db.NewTenantRunner(pool), *id, *period, time.Now(),
		func(i reports.Image) string { return i.Name })
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("report render: there is no report %d", *id)
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"report.html": []byte(p.Rendered.HTML), "report.txt": []byte(p.Rendered.Text)}
	for _, i := range p.Rendered.Images {
		files[i.Name] = i.PNG
	}
	if p.Rendered.CSV != nil {
		files["report.csv"] = p.Rendered.CSV
	}
	if p.Rendered.PDF != nil {
		files["report.pdf"] = p.Rendered.PDF
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stdout, "report %s (%s), %s: %d files in %s\n", strconv.FormatInt(*id, 10), p.Report.Name, p.Report.Period.Name,
		len(files), *out)
	return nil
}

package sla

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader is the header of the numbers as CSV: one table whose rows are the total, each check, each
// day and each incident (the section column says which); columns that do not apply to a row are empty.
// Durations are seconds, availability a percentage.
var CSVHeader = []string{"section", "key", "name", "availability_pct", "up_s", "down_s", "unknown_s", "maintenance_s",
	"outside_hours_s", "unmonitored_s", "incidents", "mttr_s", "mtbf_s", "budget_target_pct", "budget_allowed_s",
	"budget_spent_s", "budget_left_s", "burn_rate", "start", "end", "duration_s", "counted_s", "reason"}

// WriteCSV writes n as CSV (CSVHeader).
func WriteCSV(w io.Writer, n Numbers) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	row := func(section, key, name string, avail *float64, s Seconds) []string {
		return append([]string{section, key, name, optNum(avail), num(s.Up), num(s.Down), num(s.Unknown), num(s.Maintenance),
			num(s.OutsideHours), num(s.Unmonitored)}, make([]string, len(CSVHeader)-10)...)
	}
	summary := func(r []string, s Summary) []string {
		r[10], r[11], r[12] = strconv.Itoa(s.Incidents), optNum(s.MTTR), optNum(s.MTBF)
		if b := s.Budget; b != nil {
			r[13], r[14], r[15], r[16], r[17] = num(b.Target), num(b.Allowed), num(b.Spent), num(b.Left), num(b.BurnRate)
		}
		return r
	}
	rows := [][]string{summary(row("total", n.From.Format(time.RFC3339)+"/"+n.To.Format(time.RFC3339), n.TimeZone,
		n.Availability, n.Seconds), n.Summary)}
	for _, c := range n.Checks {
		rows = append(rows, summary(row("check", strconv.FormatInt(c.ID, 10), SafeCell(c.Name), c.Availability, c.Seconds), c.Summary))
	}
	for _, d := range n.Days {
		rows = append(rows, row("day", d.Day, "", d.Availability, d.Seconds))
	}
	for _, in := range n.Incidents {
		r := make([]string, len(CSVHeader))
		r[0], r[1], r[2] = "incident", strconv.FormatInt(in.CheckID, 10), SafeCell(in.CheckName)
		r[18], r[20], r[21], r[22] = in.Start.Format(time.RFC3339), optNum(in.Duration), num(in.Counted), SafeCell(in.Reason)
		if in.End != nil {
			r[19] = in.End.Format(time.RFC3339)
		}
		rows = append(rows, r)
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func optNum(f *float64) string {
	if f == nil {
		return ""
	}
	return num(*f)
}

// SafeCell keeps a name or reason from being read as a formula by a spreadsheet (CSV injection): text that
// begins with =, +, -, @, a tab or a carriage return gets a leading apostrophe.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

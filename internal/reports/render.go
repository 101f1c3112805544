package reports

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/infrawatch/infrawatch/internal/sla"
	tmpl "github.com/infrawatch/infrawatch/reports"
)

// Report is what a report says for one period: a section per SLO, and one for the checks it names
// directly (by id, host or labels).
type Report struct {
	ID          int64
	Name        string
	Tenant      string
	Language    string
	Period      sla.Period
	TimeZone    string
	GeneratedAt time.Time
	Sections    []Section
}

// Section is one SLO's numbers (Target set), or those of the report's checks (no target).
type Section struct {
	Title         string
	Target        *float64
	BusinessHours *sla.BusinessHours
	Numbers       sla.Numbers
}

// Rendered is a report's email and files.
type Rendered struct {
	Subject string
	HTML    string // images referenced as cid:NAME
	Text    string
	Images  []Image
	CSV     []byte // nil unless asked for
	PDF     []byte // nil unless asked for
}

// Image is an inline image of the HTML part: its Content-ID is CID, its file name Name.
type Image struct {
	CID, Name string
	PNG       []byte
}

// maxIncidents is how many incidents a section lists in the email and the PDF; the CSV has them all.
const maxIncidents = 50

var (
	htmlTemplate = template.Must(template.ParseFS(tmpl.FS, "email.html.tmpl"))
	textTemplate = texttemplate.Must(texttemplate.ParseFS(tmpl.FS, "email.txt.tmpl"))
	wording      = func() map[string]map[string]string {
		raw, err := tmpl.FS.ReadFile("strings.json")
		if err != nil {
			panic(err)
		}
		var w map[string]map[string]string
		if err := json.Unmarshal(raw, &w); err != nil {
			panic(fmt.Sprintf("reports/strings.json: %v", err))
		}
		return w
	}()
)

// words is a language's wording, English where a word is missing.
func words(lang string) map[string]string {
	out := map[string]string{}
	for k, v := range wording["en"] {
		out[k] = v
	}
	for k, v := range wording[lang] {
		out[k] = v
	}
	return out
}

func fill(s string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		s = strings.ReplaceAll(s, "{{"+kv[i]+"}}", kv[i+1])
	}
	return s
}

// format writes numbers, durations and times as the language does.
type format struct {
	lang string
	loc  *time.Location
	t    map[string]string
}

func (f format) decimal(v float64, places int) string {
	s := strconv.FormatFloat(v, 'f', places, 64)
	if f.lang == "pt-BR" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// percent shows three decimals, truncated rather than rounded up, so 99.9996 % never reads as 100.000 %.
func (f format) percent(v *float64) string {
	if v == nil {
		return f.t["no_data"]
	}
	return f.decimal(math.Floor(*v*1000)/1000, 3) + " %"
}

func (f format) duration(seconds float64) string {
	neg := seconds < 0
	s := int64(math.Round(math.Abs(seconds)))
	var out string
	switch {
	case s >= 86400:
		out = fmt.Sprintf("%d d %d h %02d min", s/86400, s%86400/3600, s%3600/60)
	case s >= 3600:
		out = fmt.Sprintf("%d h %02d min %02d s", s/3600, s%3600/60, s%60)
	case s >= 60:
		out = fmt.Sprintf("%d min %02d s", s/60, s%60)
	default:
		out = fmt.Sprintf("%d s", s)
	}
	if neg {
		out = "−" + out
	}
	return out
}

func (f format) time(t time.Time) string {
	if f.lang == "pt-BR" {
		return t.In(f.loc).Format("02/01/2006 15:04:05")
	}
	return t.In(f.loc).Format("2006-01-02 15:04:05")
}

var monthsPT = []string{"", "janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro",
	"outubro", "novembro", "dezembro"}

// period names a period: November 2026 / novembro de 2026, a week or a day by its dates.
func (f format) period(p sla.Period) string {
	start := p.Start.In(f.loc)
	switch p.Kind {
	case sla.PeriodMonth:
		if f.lang == "pt-BR" {
			return monthsPT[start.Month()] + " de " + strconv.Itoa(start.Year())
		}
		return start.Format("January 2006")
	case sla.PeriodWeek:
		last := p.End.Add(-time.Second).In(f.loc)
		if f.lang == "pt-BR" {
			return p.Name + " (" + start.Format("02/01") + "–" + last.Format("02/01/2006") + ")"
		}
		return p.Name + " (" + start.Format("2006-01-02") + " – " + last.Format("2006-01-02") + ")"
	default:
		if f.lang == "pt-BR" {
			return start.Format("02/01/2006")
		}
		return start.Format("2006-01-02")
	}
}

// hours names business hours: "Mon,Tue,Wed 08:00–18:00".
func (f format) hours(b sla.BusinessHours) string {
	names := strings.Split(f.t["weekdays"], ",")
	var days []string
	for _, d := range b.Days {
		if d >= 1 && d <= len(names) {
			days = append(days, names[d-1])
		}
	}
	return strings.Join(days, ",") + " " + b.Start + "–" + b.End
}

type fact struct{ Label, Value string }

type incidentView struct{ Start, Duration, Check, Reason string }

type checkView struct{ Name, Availability, Downtime, Incidents string }

type sectionView struct {
	Title, Target, Achieved, Color, Verdict, BudgetLeft, BurnRate string
	Strip                                                         template.URL
	StripWidth, StripHeight                                       int
	Facts                                                         []fact
	Checks                                                        []checkView
	Incidents                                                     []incidentView
	MoreIncidents                                                 string
}

type view struct {
	Lang, Subject, Name, PeriodLabel, TimeZone, Generated, Footer string
	T                                                             map[string]string
	Sections                                                      []sectionView
}

const (
	green = "#1e7b34"
	red   = "#c62828"
	grey  = "#5e6c84"
)

func (r Report) view(imageSrc func(Image) string, images []Image) view {
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	t := words(r.Language)
	f := format{lang: r.Language, loc: loc, t: t}
	v := view{Lang: r.Language, Name: r.Name, PeriodLabel: f.period(r.Period), TimeZone: r.TimeZone, T: t,
		Generated: f.time(r.GeneratedAt), Footer: fill(t["footer"], "tenant", r.Tenant, "id", strconv.FormatInt(r.ID, 10))}
	v.Subject = fill(t["subject"], "name", r.Name, "period", v.PeriodLabel)
	for i, s := range r.Sections {
		n := s.Numbers
		sv := sectionView{Title: s.Title, Target: "—", Achieved: f.percent(n.Availability), Color: grey, BudgetLeft: "—",
			Strip: template.URL(imageSrc(images[i])), StripWidth: stripWidth(len(n.Days)), StripHeight: stripHeight}
		if s.Target != nil {
			sv.Target = f.percent(s.Target)
			if n.Availability != nil {
				if *n.Availability >= *s.Target {
					sv.Color, sv.Verdict = green, t["met"]
				} else {
					sv.Color, sv.Verdict = red, t["missed"]
				}
			}
		}
		if b := n.Budget; b != nil {
			sv.BudgetLeft = f.duration(b.Left)
			if b.Allowed > 0 {
				sv.BudgetLeft += " (" + f.decimal(100*b.Left/b.Allowed, 1) + " %)"
				sv.BurnRate = f.decimal(b.BurnRate, 2) + "×"
			}
		}
		sv.Facts = append(sv.Facts, fact{t["downtime"], f.duration(n.Seconds.Down)}, fact{t["incidents"], strconv.Itoa(n.Summary.Incidents)})
		if n.MTTR != nil {
			sv.Facts = append(sv.Facts, fact{t["mttr"], f.duration(*n.MTTR)}, fact{t["mtbf"], f.duration(*n.MTBF)})
		}
		sv.Facts = append(sv.Facts, fact{t["unknown"], f.duration(n.Seconds.Unknown)}, fact{t["maintenance"], f.duration(n.Seconds.Maintenance)})
		if s.BusinessHours != nil {
			sv.Facts = append(sv.Facts, fact{t["business_hours"], f.hours(*s.BusinessHours)},
				fact{t["outside_hours"], f.duration(n.Seconds.OutsideHours)})
		}
		if s.Target == nil || len(n.Checks) > 1 {
			for _, c := range n.Checks {
				name := c.Name
				if c.HostName != nil {
					name = *c.HostName + " / " + c.Name
				}
				sv.Checks = append(sv.Checks, checkView{Name: name, Availability: f.percent(c.Availability),
					Downtime: f.duration(c.Seconds.Down), Incidents: strconv.Itoa(c.Summary.Incidents)})
			}
		}
		for j, in := range n.Incidents {
			if j == maxIncidents {
				sv.MoreIncidents = fill(t["more_incidents"], "n", strconv.Itoa(len(n.Incidents)-maxIncidents))
				break
			}
			d := t["ongoing"]
			if in.Duration != nil {
				d = f.duration(*in.Duration)
			}
			sv.Incidents = append(sv.Incidents, incidentView{Start: f.time(in.Start), Duration: d, Check: in.CheckName, Reason: in.Reason})
		}
		v.Sections = append(v.Sections, sv)
	}
	return v
}

// Render makes the email and the asked-for attachments of r. imageSrc says how the HTML refers to an
// image: "cid:"+CID in the email, its file name in a preview.
func Render(r Report, formats []string, imageSrc func(Image) string) (Rendered, error) {
	var out Rendered
	for i, s := range r.Sections {
		img, err := Strip(s.Numbers.Days, s.Target)
		if err != nil {
			return Rendered{}, err
		}
		name := fmt.Sprintf("strip-%d.png", i+1)
		out.Images = append(out.Images, Image{CID: fmt.Sprintf("strip-%d@infrawatch", i+1), Name: name, PNG: img})
	}
	v := r.view(imageSrc, out.Images)
	out.Subject = v.Subject
	var html, text bytes.Buffer
	if err := htmlTemplate.Execute(&html, v); err != nil {
		return Rendered{}, fmt.Errorf("render the HTML of report %d: %w", r.ID, err)
	}
	if err := textTemplate.Execute(&text, v); err != nil {
		return Rendered{}, fmt.Errorf("render the text of report %d: %w", r.ID, err)
	}
	out.HTML, out.Text = html.String(), text.String()
	for _, f := range formats {
		var err error
		switch f {
		case "csv":
			out.CSV, err = r.CSV()
		case "pdf":
			out.PDF, err = r.PDF(v)
		}
		if err != nil {
			return Rendered{}, fmt.Errorf("render the %s of report %d: %w", f, r.ID, err)
		}
	}
	return out, nil
}

// CSV is internal/sla's CSV of each section, one table: a first column names the section.
func (r Report) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(append([]string{"report_section"}, sla.CSVHeader...)); err != nil {
		return nil, err
	}
	for _, s := range r.Sections {
		var part bytes.Buffer
		if err := sla.WriteCSV(&part, s.Numbers); err != nil {
			return nil, err
		}
		rows, err := csv.NewReader(&part).ReadAll()
		if err != nil {
			return nil, err
		}
		for _, row := range rows[1:] {
			if err := w.Write(append([]string{sla.SafeCell(s.Title)}, row...)); err != nil {
				return nil, err
			}
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

const (
	stripDay    = 18 // pixels per day
	stripGap    = 2
	stripHeight = 28
)

func stripWidth(days int) int { return max(1, days*stripDay-stripGap) }

// Strip draws the per-day availability as a PNG (email clients do not render SVG): a bar per day,
// green at or above the target (99.9 % without one), amber within half the allowed downtime below it,
// red below that, grey where nothing was measured.
func Strip(days []sla.Day, target *float64) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, stripWidth(len(days)), stripHeight))
	goal := 99.9
	if target != nil {
		goal = *target
	}
	for i, d := range days {
		c := color.RGBA{0xc1, 0xc7, 0xd0, 0xff}
		if a := d.Availability; a != nil {
			switch {
			case *a >= goal:
				c = color.RGBA{0x1e, 0x7b, 0x34, 0xff}
			case *a >= goal-(100-goal)/2:
				c = color.RGBA{0xf5, 0xa6, 0x23, 0xff}
			default:
				c = color.RGBA{0xc6, 0x28, 0x28, 0xff}
			}
		}
		for x := i * stripDay; x < i*stripDay+stripDay-stripGap; x++ {
			for y := 0; y < stripHeight; y++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PDF lays the view out on A4 pages with the PDF core fonts (text in Windows-1252, which covers
// Portuguese), the strip as an image.
func (r Report) PDF(v view) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreator("infrawatch", true)
	pdf.SetTitle(v.Subject, true)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	text := func(s string) string { return tr(strings.NewReplacer("−", "-", "—", "-", "×", "x").Replace(s)) }
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 16)
	pdf.MultiCell(0, 8, text(v.T["title"]+": "+v.Name), "", "L", false)
	pdf.SetFont("Helvetica", "", 9)
	pdf.MultiCell(0, 5, text(v.T["period"]+": "+v.PeriodLabel+"  ·  "+v.T["time_zone"]+": "+v.TimeZone+"  ·  "+
		v.T["generated"]+": "+v.Generated), "", "L", false)
	images := map[int][]byte{}
	for i, s := range r.Sections {
		img, err := Strip(s.Numbers.Days, s.Target)
		if err != nil {
			return nil, err
		}
		images[i] = img
	}
	for i, s := range v.Sections {
		pdf.Ln(4)
		pdf.SetFont("Helvetica", "B", 13)
		pdf.MultiCell(0, 7, text(s.Title), "", "L", false)
		pdf.SetFont("Helvetica", "", 10)
		verdict := ""
		if s.Verdict != "" {
			verdict = " (" + s.Verdict + ")"
		}
		pdf.MultiCell(0, 5, text(v.T["target"]+": "+s.Target+"    "+v.T["achieved"]+": "+s.Achieved+verdict+"    "+
			v.T["budget_left"]+": "+s.BudgetLeft), "", "L", false)
		name := fmt.Sprintf("strip-%d", i)
		pdf.RegisterImageOptionsReader(name, fpdf.ImageOptions{ImageType: "PNG"}, bytes.NewReader(images[i]))
		w := math.Min(180, float64(s.StripWidth)/4)
		pdf.ImageOptions(name, pdf.GetX(), pdf.GetY()+1, w, float64(stripHeight)/4, true, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
		pdf.Ln(2)
		for _, fct := range s.Facts {
			pdf.CellFormat(70, 5, text(fct.Label), "", 0, "L", false, 0, "")
			pdf.CellFormat(0, 5, text(fct.Value), "", 1, "L", false, 0, "")
		}
		if len(s.Checks) > 0 {
			pdf.Ln(2)
			pdf.SetFont("Helvetica", "B", 9)
			for j, h := range []string{v.T["check"], v.T["availability"], v.T["downtime"], v.T["incidents"]} {
				pdf.CellFormat([]float64{80, 35, 40, 25}[j], 5, text(h), "B", 0, "L", false, 0, "")
			}
			pdf.Ln(-1)
			pdf.SetFont("Helvetica", "", 9)
			for _, c := range s.Checks {
				for j, cell := range []string{c.Name, c.Availability, c.Downtime, c.Incidents} {
					pdf.CellFormat([]float64{80, 35, 40, 25}[j], 5, text(cell), "", 0, "L", false, 0, "")
				}
				pdf.Ln(-1)
			}
		}
		pdf.Ln(2)
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(0, 6, text(v.T["incidents"]), "", 1, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 8)
		if len(s.Incidents) == 0 {
			pdf.CellFormat(0, 5, text(v.T["no_incidents"]), "", 1, "L", false, 0, "")
		}
		for _, in := range s.Incidents {
			pdf.CellFormat(38, 5, text(in.Start), "", 0, "L", false, 0, "")
			pdf.CellFormat(32, 5, text(in.Duration), "", 0, "L", false, 0, "")
			pdf.CellFormat(40, 5, text(in.Check), "", 0, "L", false, 0, "")
			pdf.MultiCell(0, 5, text(in.Reason), "", "L", false)
		}
		if s.MoreIncidents != "" {
			pdf.MultiCell(0, 5, text(s.MoreIncidents), "", "L", false)
		}
	}
	pdf.Ln(4)
	pdf.SetFont("Helvetica", "", 7)
	pdf.MultiCell(0, 4, text(v.Footer), "", "L", false)
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

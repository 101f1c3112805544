package reports

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/sla"
)

var update = flag.Bool("update", false, "rewrite the golden files of the rendered reports")

func f64(v float64) *float64 { return &v }

// sample is a monthly report of November 2026 in Sao Paulo: an SLO with business hours that missed its
// target, and the checks section with two checks (one with a name a spreadsheet would run).
func sample(lang string) Report {
	loc, _ := time.LoadLocation("America/Sao_Paulo")
	p, _ := sla.ParsePeriod("2026-11", loc)
	var days []sla.Day
	for d := 1; d <= 30; d++ {
		s := sla.Seconds{Up: 36000, OutsideHours: 50400}
		switch d {
		case 3:
			s = sla.Seconds{Up: 35545, Down: 455, OutsideHours: 50400}
		case 14, 15:
			s = sla.Seconds{OutsideHours: 86400}
		case 20:
			s = sla.Seconds{Up: 30000, Down: 3000, Unknown: 600, Maintenance: 2400, OutsideHours: 50400}
		}
		day := sla.Day{Day: fmt.Sprintf("2026-11-%02d", d), Seconds: s}
		day.Availability = s.Availability()
		days = append(days, day)
	}
	var total sla.Seconds
	for _, d := range days {
		total.Up += d.Up
		total.Down += d.Down
		total.Unknown += d.Unknown
		total.Maintenance += d.Maintenance
		total.OutsideHours += d.OutsideHours
	}
	end := time.Date(2026, 11, 3, 13, 7, 40, 0, time.UTC)
	end2 := time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)
	incidents := []sla.Incident{
		{CheckID: 12, CheckName: "home", Start: time.Date(2026, 11, 3, 13, 0, 5, 0, time.UTC), End: &end, Duration: f64(455), Counted: 455, Reason: "HTTP 503"},
		{CheckID: 12, CheckName: "home", Start: time.Date(2026, 11, 20, 15, 10, 0, 0, time.UTC), End: &end2, Duration: f64(3000), Counted: 3000, Reason: "timeout após 10 s"},
	}
	budget := &sla.Budget{Target: 99.5, Allowed: 0.005 * (total.Up + total.Down), Spent: total.Down}
	budget.Left = budget.Allowed - budget.Spent
	budget.BurnRate = budget.Spent / budget.Allowed
	sloNumbers := sla.Numbers{From: p.Start, To: p.End, TimeZone: "America/Sao_Paulo", Days: days, Incidents: incidents,
		Summary: sla.Summary{Availability: total.Availability(), Seconds: total, Incidents: 2, MTTR: f64(1727.5),
			MTBF: f64(total.Up / 2), Budget: budget}}
	sloNumbers.Checks = []sla.CheckNumbers{{ID: 12, Name: "home", Summary: sloNumbers.Summary}}
	host := "web-1"
	checks := sla.Numbers{From: p.Start, To: p.End, TimeZone: "America/Sao_Paulo", Days: days, Incidents: incidents[:1],
		Summary: sla.Summary{Availability: f64(99.9), Seconds: sla.Seconds{Up: 2591545, Down: 455, Unknown: 2000}, Incidents: 1,
			MTTR: f64(455), MTBF: f64(2591545)}}
	checks.Checks = []sla.CheckNumbers{
		{ID: 12, Name: "home", HostName: &host, Summary: sla.Summary{Availability: f64(99.98), Seconds: sla.Seconds{Down: 455}, Incidents: 1}},
		{ID: 13, Name: "=HYPERLINK(\"x\")", Summary: sla.Summary{Availability: nil}},
	}
	return Report{ID: 7, Name: "Loja <online>", Tenant: "Acme & Cia", Language: lang, Period: p, TimeZone: "America/Sao_Paulo",
		GeneratedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Sections: []Section{
			{Title: "shop 99.5", Target: f64(99.5), BusinessHours: &sla.BusinessHours{Days: []int{1, 2, 3, 4, 5}, Start: "08:00", End: "18:00"}, Numbers: sloNumbers},
			{Title: words(lang)["checks"], Numbers: checks},
		}}
}

func cid(i Image) string { return "cid:" + i.CID }

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/reports -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./internal/reports -update rewrites it); got:\n%s", name, got)
	}
}

// The HTML email, its text part and the CSV equal the golden files, in English and Portuguese; the
// HTML escapes names, has no script and refers to its strip by cid:, the strip is a PNG of a bar per day.
func TestRenderGolden(t *testing.T) {
	for _, lang := range Languages {
		t.Run(lang, func(t *testing.T) {
			out, err := Render(sample(lang), []string{"csv"}, cid)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "report."+lang+".html", []byte(out.HTML))
			golden(t, "report."+lang+".txt", []byte(out.Text))
			golden(t, "report."+lang+".csv", out.CSV)
			if strings.Contains(out.HTML, "<script") || !strings.Contains(out.HTML, `src="cid:strip-1@infrawatch"`) ||
				!strings.Contains(out.HTML, "Loja &lt;online&gt;") {
				t.Fatal("the HTML is not safe or does not refer to its strip by cid:")
			}
			if !strings.Contains(string(out.CSV), `'=HYPERLINK`) {
				t.Fatal("a formula-like name reaches the CSV as it is")
			}
			img, err := png.Decode(bytes.NewReader(out.Images[0].PNG))
			if err != nil || img.Bounds().Dx() != stripWidth(30) {
				t.Fatalf("strip: %v %v", err, img)
			}
			want := map[string]string{"en": "November 2026", "pt-BR": "novembro de 2026"}[lang]
			if !strings.Contains(out.Subject, want) {
				t.Fatalf("subject %q", out.Subject)
			}
		})
	}
}

// The PDF's text, extracted with pdftotext, has the numbers the HTML shows.
func TestRenderPDF(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext is not installed (Debian: poppler-utils); the PDF's text is not checked")
	}
	for _, lang := range Languages {
		r := sample(lang)
		out, err := Render(r, []string{"pdf"}, cid)
		if err != nil {
			t.Fatal(err)
		}
		text := pdfText(t, out.PDF)
		v := r.view(cid, out.Images)
		for _, s := range v.Sections {
			for _, want := range []string{s.Title, s.Achieved, s.Target, s.BudgetLeft} {
				if want != "—" && !strings.Contains(text, want) {
					t.Errorf("%s: the PDF lacks %q:\n%s", lang, want, text)
				}
			}
			for _, f := range s.Facts {
				if !strings.Contains(text, f.Value) {
					t.Errorf("%s: the PDF lacks %s %q", lang, f.Label, f.Value)
				}
			}
			for _, in := range s.Incidents {
				if !strings.Contains(text, in.Start) || !strings.Contains(text, in.Reason) {
					t.Errorf("%s: the PDF lacks incident %+v", lang, in)
				}
			}
		}
	}
}

func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return string(out)
}

// The HTML renders in headless Chromium from a loopback server; the screenshot is kept for people to
// look at (its path is printed).
func TestRenderInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian: chromium); the HTML is not rendered in a browser")
	}
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	out, err := Render(sample("pt-BR"), nil, func(i Image) string { return i.Name })
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"/report.html": []byte(out.HTML)}
	for _, i := range out.Images {
		files["/"+i.Name] = i.PNG
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	dir := filepath.Join(os.TempDir(), "infrawatch-report-screenshot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.pt-BR.png")
	_ = os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars", "--user-data-dir="+t.TempDir(),
		"--window-size=720,1400", "--screenshot="+shot, srv.URL+"/report.html")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v: %s", err, b)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The strip's green and red bars are on the page: the image was served and drawn.
	var green, red int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch {
			case r>>8 == 0x1e && g>>8 == 0x7b && bl>>8 == 0x34:
				green++
			case r>>8 == 0xc6 && g>>8 == 0x28 && bl>>8 == 0x28:
				red++
			}
		}
	}
	if green == 0 || red == 0 {
		t.Fatalf("the screenshot shows no strip (green %d, red %d px): %s", green, red, shot)
	}
	t.Logf("screenshot of the report as Chromium renders it: %s", shot)
}

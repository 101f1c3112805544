package reports

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/notify/smtptest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// clock is a clock the test sets; After never fires (the test calls RunOnce itself).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) After(time.Duration) <-chan time.Time {
	return make(chan time.Time)
}

// hangingMailer sends through the real sender, then hangs until released: a scheduler that dies
// between the send and the mark.
type hangingMailer struct {
	*notify.Sender
	sent, release chan struct{}
}

func (h hangingMailer) SendEmail(ctx context.Context, e notify.Email) (bool, error) {
	retry, err := h.Sender.SendEmail(ctx, e)
	h.sent <- struct{}{}
	<-h.release
	return retry, err
}

type runRow struct {
	state      string
	generation int32
	attempts   int32
	messageID  string
}

// One email per report and period: two schedulers at once send October's report once, on time (07:00
// on November 1st in Sao Paulo), through a real SMTP server, with the HTML, its inline strip by cid:
// and the PDF and CSV attached; a send-now of the same period is a new email (a new Message-ID); a
// scheduler that dies between its send and its mark is replaced once the lease passes and the email
// goes again with the same Message-ID; the dead one's late mark changes nothing.
func TestWorkerSendsOneEmailPerPeriod(t *testing.T) {
	srv := smtptest.Start(t, "relay", "relay-pass")
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := d.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var tenant uuid.UUID
	var check, report int64
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.tenants (slug, name, time_zone) VALUES ('acme', 'Acme', 'America/Sao_Paulo') RETURNING id`).
		Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, created_at)
		VALUES ($1, 'loja', 'http', 'http://127.0.0.1:1/', '2026-10-01T00:00:00Z') RETURNING id`, tenant).Scan(&check); err != nil {
		t.Fatal(err)
	}
	exec(`SELECT infrawatch.ensure_partitions('ts.check_results', '2026-09-30', '2026-11-03')`)
	exec(`INSERT INTO ts.check_results (time, tenant_id, check_id, status)
		SELECT t, $1, $2, 'up' FROM generate_series('2026-10-01T00:00:05Z'::timestamptz, '2026-11-02T00:00:00Z', '1 minute') t`, tenant, check)
	exec(`INSERT INTO app.check_events (tenant_id, check_id, time, status) VALUES ($1, $2, '2026-10-01T00:00:05Z', 'up')`, tenant, check)
	def := Definition{Period: Monthly, Schedule: DefaultSchedule(Monthly)}
	sp := Location("America/Sao_Paulo")
	oct, _ := ParsePeriod(Monthly, "2026-10", sp)
	due, err := def.RunAt(oct, sp)
	if err != nil || !due.Equal(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("October's report is due at %v (%v), want 07:00 on November 1st in Sao Paulo", due, err)
	}
	if err := d.Pool.QueryRow(ctx, `INSERT INTO app.reports (tenant_id, name, check_ids, period, schedule, recipients, formats, language,
		next_run_at, next_period) VALUES ($1, 'Mensal', ARRAY[$2::bigint], 'monthly', $3, '{cto@example.com,ops@example.com}',
		'{csv,pdf}', 'pt-BR', $4, '2026-10') RETURNING id`, tenant, check, def.Schedule, due).Scan(&report); err != nil {
		t.Fatal(err)
	}

	sender, err := notify.NewSender(notify.Config{SMTP: notify.SMTPConfig{URL: "smtp://relay:relay-pass@" + srv.Addr,
		From: "reports@iw.example.com", TLS: srv.TLS}}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &clock{now: due.Add(-time.Minute)}
	worker := func(owner string, m Mailer) *Worker {
		w := NewWorker(Config{Owner: owner, Lease: 5 * time.Minute}, d.System(), db.NewTenantRunner(d.Pool), m, log)
		w.SetClock(c)
		w.Sent = make(chan RunOutcome, 10)
		return w
	}
	a, b := worker("a", sender), worker("b", sender)
	runs := func() []runRow {
		rows, err := d.Pool.Query(ctx, `SELECT state, generation, attempts, message_id FROM app.report_runs WHERE report_id = $1`, report)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []runRow
		for rows.Next() {
			var r runRow
			if err := rows.Scan(&r.state, &r.generation, &r.attempts, &r.messageID); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	once := func(w ...*Worker) {
		t.Helper()
		var wg sync.WaitGroup
		for _, x := range w {
			wg.Go(func() {
				if err := x.RunOnce(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}

	// A minute early: nothing.
	once(a, b)
	if r := runs(); len(r) != 0 {
		t.Fatalf("runs before the report is due: %+v", r)
	}
	// Due: both schedulers look at once; one email.
	c.set(due.Add(time.Second))
	once(a, b)
	once(a, b)
	outcomes := drain(a.Sent, b.Sent)
	if len(outcomes) != 1 || outcomes[0].State != "sent" {
		t.Fatalf("outcomes %+v, want one sent", outcomes)
	}
	if r := runs(); len(r) != 1 || r[0] != (runRow{"sent", 1, 1, outcomes[0].MessageID}) {
		t.Fatalf("runs %+v", r)
	}
	first := srv.Next(t)
	msg := parse(t, first.Data)
	if msg.header.Get("Message-ID") != "<"+outcomes[0].MessageID+">" || !strings.HasPrefix(outcomes[0].MessageID, "infrawatch.report.") ||
		len(first.To) != 2 {
		t.Fatalf("Message-ID %q (outcome %q), to %v", msg.header.Get("Message-ID"), outcomes[0].MessageID, first.To)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.header.Get("Subject"))
	if subject != "Relatório de SLA Mensal: outubro de 2026" {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{"text/plain", "text/html", "image/png <strip-1@infrawatch> strip-1.png",
		"application/pdf  sla-Mensal-2026-10.pdf", "text/csv  sla-Mensal-2026-10.csv"} {
		if !strings.Contains(msg.parts, want) {
			t.Errorf("the email lacks %s; parts: %s", want, msg.parts)
		}
	}
	if !strings.Contains(msg.html, `src="cid:strip-1@infrawatch"`) || !strings.Contains(msg.html, "100,000 %") {
		t.Errorf("the HTML does not show its strip or the availability:\n%s", msg.html)
	}
	var next string
	var nextAt time.Time
	if err := d.Pool.QueryRow(ctx, `SELECT next_period, next_run_at FROM app.reports WHERE id = $1`, report).Scan(&next, &nextAt); err != nil ||
		next != "2026-11" || !nextAt.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("next %s at %v (%v)", next, nextAt, err)
	}

	// Send-now of October again: a new email, a new Message-ID. Its scheduler dies after the send. (The
	// report is disabled first: on the real clock, in December, November's report is due too.)
	exec(`UPDATE app.reports SET enabled = false WHERE id = $1`, report)
	if err := db.NewTenantRunner(d.Pool).WithTenant(ctx, tenant, func(q *dbsqlc.Queries) error {
		_, err := q.ReportRunSendNow(ctx, dbsqlc.ReportRunSendNowParams{ReportID: report, Period: oct.Name, PeriodStart: oct.Start,
			PeriodEnd: oct.End})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.set(time.Now().Add(time.Minute)) // send-now is due at the database's now
	hang := hangingMailer{Sender: sender, sent: make(chan struct{}, 1), release: make(chan struct{})}
	dying := worker("dying", hang)
	done := make(chan error, 1)
	go func() { done <- dying.RunOnce(ctx) }()
	<-hang.sent
	second := parse(t, srv.Next(t).Data)
	// Within the lease nobody else takes the run; past it, b sends it again, the same email.
	once(b)
	if r := runs(); len(r) != 1 || r[0].state != "sending" || r[0].generation != 2 {
		t.Fatalf("within the lease: %+v", r)
	}
	c.set(c.Now().Add(6 * time.Minute))
	once(b)
	third := parse(t, srv.Next(t).Data)
	id2 := second.header.Get("Message-ID")
	if id2 == msg.header.Get("Message-ID") || third.header.Get("Message-ID") != id2 {
		t.Fatalf("Message-IDs: first %s, send-now %s, resend %s", msg.header.Get("Message-ID"), id2, third.header.Get("Message-ID"))
	}
	close(hang.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := runs(); len(r) != 1 || r[0] != (runRow{"sent", 2, 2, strings.Trim(id2, "<>")}) {
		t.Fatalf("after the resend: %+v", r)
	}
	if o := drain(dying.Sent); len(o) != 1 || o[0].State != "sent" {
		t.Fatalf("the dead scheduler's outcome %+v", o)
	}
}

func drain(chs ...chan RunOutcome) []RunOutcome {
	var out []RunOutcome
	for _, ch := range chs {
		for {
			select {
			case o := <-ch:
				out = append(out, o)
				continue
			default:
			}
			break
		}
	}
	return out
}

type parsed struct {
	header mail.Header
	parts  string // "content-type <content-id> filename" per part, nested parts included
	html   string
}

func parse(t *testing.T, data string) parsed {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: m.Header}
	var walk func(ct string, body io.Reader)
	walk = func(ct string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !strings.HasPrefix(mt, "multipart/") {
			return
		}
		r := multipart.NewReader(body, params["boundary"])
		for {
			part, err := r.NextRawPart()
			if err != nil {
				return
			}
			pct := part.Header.Get("Content-Type")
			pmt, _, _ := mime.ParseMediaType(pct)
			p.parts += pmt + " " + part.Header.Get("Content-ID") + " " + part.FileName() + "\n"
			if strings.HasPrefix(pmt, "multipart/") {
				walk(pct, part)
				continue
			}
			if pmt == "text/html" {
				raw, _ := io.ReadAll(decoded(part))
				p.html = string(raw)
			}
		}
	}
	walk(m.Header.Get("Content-Type"), m.Body)
	return p
}

// decoded reads a raw part's body in its transfer encoding.
func decoded(part *multipart.Part) io.Reader {
	switch strings.ToLower(part.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		return quotedprintable.NewReader(part)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, part)
	}
	return part
}

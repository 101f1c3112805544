package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// logLine is a line as GET /api/v1/logs answers it.
type logLine struct {
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Source   string    `json:"source"`
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
}

type logPage struct {
	Items      []logLine `json:"items"`
	NextCursor *string   `json:"next_cursor"`
}

// pushLogs stores entries for tw through the logs push route: each is {time (ms), source, message}.
func (w *world) pushLogs(t *testing.T, tw *tenantWorld, host string, entries []map[string]any) {
	t.Helper()
	for start := 0; start < len(entries); start += 500 {
		batch := entries[start:min(start+500, len(entries))]
		got := w.call(t, "POST", "/api/v1/logs", w.ingestKey(t, tw), map[string]any{"host": map[string]any{"name": host}, "entries": batch}).
			must(t, http.StatusOK)
		if got.json["accepted"] != float64(len(batch)) {
			t.Fatalf("logs push: %s", got.raw)
		}
	}
}

// searchAllLogs follows next_cursor from the first page to the last and answers every line.
func (w *world) searchAllLogs(t *testing.T, credential string, params url.Values) (lines []logLine, pages int) {
	t.Helper()
	for {
		var p logPage
		got := w.call(t, "GET", "/api/v1/logs?"+params.Encode(), credential, nil).must(t, http.StatusOK)
		if err := json.Unmarshal([]byte(got.raw), &p); err != nil {
			t.Fatal(err)
		}
		lines, pages = append(lines, p.Items...), pages+1
		if p.NextCursor == nil {
			return lines, pages
		}
		if pages > 1000 {
			t.Fatal("the pages never end")
		}
		params.Set("cursor", *p.NextCursor)
	}
}

// Paging through lines that share a timestamp answers every line exactly once, newest first: many lines
// in the same millisecond, identical lines among them, pages that end inside such a group.
func TestLogPagesKeepLinesThatShareATime(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newWorldOn(t, flavor, testLimits)
		base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		var entries []map[string]any
		var want []string
		add := func(at time.Time, source, message string) {
			entries = append(entries, map[string]any{"time": at.UnixMilli(), "source": source, "message": message})
			want = append(want, fmt.Sprintf("%d %s %s", at.UnixMilli(), source, message))
		}
		add(base.Add(time.Millisecond), "app", "after the burst")
		for i := range 37 { // a burst: 37 lines in one millisecond, over many pages of 4
			add(base, fmt.Sprintf("worker-%d", i%5), fmt.Sprintf("job %d done", i))
		}
		for range 3 { // the same line three times, as a retrying logger writes it
			add(base, "app", "connection reset")
		}
		add(base.Add(-time.Millisecond), "app", "before the burst")
		w.pushLogs(t, w.a, "web-1", entries)

		for _, params := range []url.Values{
			{"limit": {"4"}},
			{"limit": {"7"}, "host": {"web-1"}},
			{"limit": {"1"}, "q": {"e"}}, // every line has an e
		} {
			lines, pages := w.searchAllLogs(t, w.a.tokens["viewer"], params)
			got := make([]string, len(lines))
			for i, l := range lines {
				got[i] = fmt.Sprintf("%d %s %s", l.Time.UnixMilli(), l.Source, l.Message)
				if i > 0 && l.Time.After(lines[i-1].Time) {
					t.Errorf("%v: line %d (%s) is newer than the one before it", params, i, got[i])
				}
			}
			slices.Sort(got)
			sorted := slices.Sorted(slices.Values(want))
			if !slices.Equal(got, sorted) {
				t.Errorf("%v: %d pages answered %d lines, want each of the %d exactly once:\n got %q\nwant %q",
					params, pages, len(got), len(sorted), got, sorted)
			}
		}
	})
}

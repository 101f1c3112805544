package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i <= to; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
}

func wantLines(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

// tailThroughSpool polls, flushes into a spool and returns the messages of the spooled log batches,
// which is exactly what delivery would send.
func tailThroughSpool(t *testing.T, tl *Tailer, s *Spool) []string {
	t.Helper()
	tl.Poll()
	err := tl.Flush(3, func(es []LogEntry) error {
		b, err := gzipJSON(LogsPayload{Host: Host{Name: "h"}, Entries: es})
		if err != nil {
			return err
		}
		return s.Put(KindLogs, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range s.Items() {
		b, _ := s.Read(it)
		var p LogsPayload
		if err := json.Unmarshal(ungzip(t, b), &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			out = append(out, e.Message)
		}
		_ = s.Remove(it)
	}
	return out
}

func TestTailRotationLosesAndRepeatsNothing(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	state := filepath.Join(dir, "state.json")
	s, _ := OpenSpool(filepath.Join(dir, "spool"), 1<<20)
	src := []LogSource{{Path: filepath.Join(dir, "*.log"), Source: "app", FromBeginning: true}}
	tl, err := NewTailer(src, state)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	appendLines(t, logPath, 1, 3)
	got = append(got, tailThroughSpool(t, tl, s)...)
	appendLines(t, logPath, 4, 5)
	if err := os.Rename(logPath, filepath.Join(dir, "app.log.1")); err != nil {
		t.Fatal(err)
	}
	appendLines(t, filepath.Join(dir, "app.log.1"), 6, 6) // written to the old file after the rename
	appendLines(t, logPath, 7, 9)
	got = append(got, tailThroughSpool(t, tl, s)...)

	// Truncation in place (copytruncate).
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logPath, 10, 11)
	got = append(got, tailThroughSpool(t, tl, s)...)
	appendLines(t, logPath, 12, 12)
	got = append(got, tailThroughSpool(t, tl, s)...)
	tl.Close()

	// Restart: offsets come back from the state file.
	appendLines(t, logPath, 13, 14)
	tl2, err := NewTailer(src, state)
	if err != nil {
		t.Fatal(err)
	}
	defer tl2.Close()
	got = append(got, tailThroughSpool(t, tl2, s)...)
	if want := wantLines(1, 14); !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered\n%q\nwant\n%q", got, want)
	}
}

func TestTailPartialLineWaitsForNewline(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.log")
	s, _ := OpenSpool(filepath.Join(dir, "spool"), 1<<20)
	tl, _ := NewTailer([]LogSource{{Path: p, Source: "a", FromBeginning: true}}, filepath.Join(dir, "st"))
	defer tl.Close()
	if err := os.WriteFile(p, []byte("hel"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := tailThroughSpool(t, tl, s); len(got) != 0 {
		t.Fatalf("partial line delivered: %q", got)
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("lo\n")
	f.Close()
	if got := tailThroughSpool(t, tl, s); !reflect.DeepEqual(got, []string{"hello"}) {
		t.Fatalf("got %q", got)
	}
}

func TestParseLogLine(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		line, sev string
		ts        time.Time
	}{
		{"plain text", "info", now},
		{"2026-11-27T10:00:00Z ERROR disk full", "error", time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)},
		{"<11>Nov 28 11:00:00 host sshd: failed", "error", time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC)},
		{`ts=x level=warn msg="slow"`, "warning", now},
		{"WARN something", "warning", now},
	} {
		ts, sev, _ := parseLogLine(tc.line, now)
		if sev != tc.sev || !ts.Equal(tc.ts) {
			t.Errorf("%q: got %s %s, want %s %s", tc.line, ts, sev, tc.ts, tc.sev)
		}
	}
}

func FuzzParseLogLine(f *testing.F) {
	f.Add("<13>Nov  1 00:00:00 x")
	f.Add("2026-01-01 00:00:00 level=error")
	f.Fuzz(func(t *testing.T, line string) {
		_, sev, _ := parseLogLine(line, time.Now())
		if sev == "" {
			t.Fatal("empty severity")
		}
	})
}

// What the server cannot store is mended on the agent's side, so that a line of a binary or
// mis-encoded file is never refused: NUL bytes and bytes that are not UTF-8 become U+FFFD, and a line
// longer than the server takes is cut at a character boundary.
func TestTailerMendsWhatTheServerCannotStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bin.log")
	long := strings.Repeat("é", 20<<10) // 40 KiB
	if err := os.WriteFile(path, []byte("nul\x00byte\nbad\xffutf8\n"+long+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tl, err := NewTailer([]LogSource{{Path: path, Source: "bin", FromBeginning: true}}, filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	tl.Poll()
	var got []LogEntry
	if err := tl.Flush(10, func(es []LogEntry) error { got = append(got, es...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Message != "nul\uFFFDbyte" || got[1].Message != "bad\uFFFDutf8" {
		t.Fatalf("entries %v", got)
	}
	if m := got[2].Message; len(m) > MaxLogMessageBytes || !utf8.ValidString(m) || !strings.HasPrefix(long, m) || len(m) < MaxLogMessageBytes-1 {
		t.Errorf("the long line became %d bytes (valid UTF-8: %v), want at most %d", len(m), utf8.ValidString(m), MaxLogMessageBytes)
	}
}

package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// LogSource is a glob of files to tail and the source name their entries carry.
type LogSource struct {
	Path   string `yaml:"path"`
	Source string `yaml:"source"`
	// FromBeginning reads files found at the agent's very first start from byte 0 instead of from
	// their end. Files that appear later (after a rotation) are always read from byte 0.
	FromBeginning bool `yaml:"from_beginning"`
}

// maxLineBytes bounds a line without newline before it is sent as it is.
const maxLineBytes = 1 << 20

// fileState is what survives a restart for one tailed path.
type fileState struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

type tailedFile struct {
	path, source string
	f            *os.File
	inode        uint64
	offset       int64 // bytes of complete lines consumed
}

// Tailer follows log files. It is driven by Poll (read what is new) and Flush (hand the entries
// to the spool, then persist offsets), both from one goroutine: offsets are saved only after the
// lines they cover are spooled, so a crash can repeat lines but never lose them.
type Tailer struct {
	sources   []LogSource
	statePath string
	now       func() time.Time

	files    map[string]*tailedFile
	saved    map[string]fileState
	started  bool
	pending  []LogEntry
	pendSize int
}

// NewTailer loads the offsets a previous run saved in statePath.
func NewTailer(sources []LogSource, statePath string) (*Tailer, error) {
	t := &Tailer{sources: sources, statePath: statePath, now: time.Now,
		files: map[string]*tailedFile{}, saved: map[string]fileState{}}
	b, err := os.ReadFile(statePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read tail state: %w", err)
	default:
		if err := json.Unmarshal(b, &t.saved); err != nil {
			return nil, fmt.Errorf("decode tail state %s: %w", statePath, err)
		}
		t.started = true // a previous run existed: new files are read from the beginning
	}
	return t, nil
}

// Pending reports how many entries and bytes wait for Flush.
func (t *Tailer) Pending() (int, int) { return len(t.pending), t.pendSize }

// Poll reads what was appended to every matching file since the last call.
func (t *Tailer) Poll() {
	first := !t.started
	t.started = true
	seen := map[string]bool{}
	for _, src := range t.sources {
		paths, _ := filepath.Glob(src.Path)
		sort.Strings(paths)
		for _, p := range paths {
			if seen[p] {
				continue
			}
			seen[p] = true
			t.pollFile(p, src, first)
		}
	}
	for p, tf := range t.files {
		if !seen[p] { // deleted or renamed away with no successor: finish it and let go
			t.read(tf, true)
			tf.f.Close()
			delete(t.files, p)
			delete(t.saved, p)
		}
	}
}

func (t *Tailer) pollFile(path string, src LogSource, first bool) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	ino := inodeOf(fi)
	tf := t.files[path]
	if tf != nil && tf.inode != ino {
		// Renamed away and replaced: what is left in the old file comes before the new one.
		t.read(tf, true)
		tf.f.Close()
		delete(t.files, path)
		tf = nil
		delete(t.saved, path)
		first = false
	}
	if tf == nil {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		tf = &tailedFile{path: path, source: src.Source, f: f, inode: ino}
		if st, ok := t.saved[path]; ok {
			if st.Inode == ino && st.Offset <= fi.Size() {
				tf.offset = st.Offset
			}
		} else if first && !src.FromBeginning {
			tf.offset = fi.Size()
		}
		t.files[path] = tf
	} else if fi.Size() < tf.offset {
		tf.offset = 0 // truncated in place (copytruncate): start over
	}
	t.read(tf, false)
}

// read consumes complete lines from tf.offset to EOF; with final, a last line without newline too.
func (t *Tailer) read(tf *tailedFile, final bool) {
	buf := make([]byte, 64<<10)
	var partial []byte
	for {
		n, err := tf.f.ReadAt(buf, tf.offset+int64(len(partial)))
		data := append(partial, buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			t.emit(tf, string(bytes.TrimRight(data[:i], "\r")))
			tf.offset += int64(i + 1)
			data = data[i+1:]
		}
		partial = append([]byte(nil), data...)
		if len(partial) >= maxLineBytes {
			t.emit(tf, string(partial))
			tf.offset += int64(len(partial))
			partial = nil
		}
		if err == io.EOF || n == 0 || err != nil {
			break
		}
	}
	if final && len(partial) > 0 {
		t.emit(tf, string(partial))
		tf.offset += int64(len(partial))
	}
}

func (t *Tailer) emit(tf *tailedFile, line string) {
	if line == "" {
		return
	}
	ts, sev, msg := parseLogLine(mendLine(line), t.now())
	t.pending = append(t.pending, LogEntry{TimeMs: ts.UnixMilli(), Source: tf.source, Severity: sev,
		Message: msg, Attributes: map[string]string{"file": tf.path}})
	t.pendSize += len(msg) + 64
}

// mendLine makes a line of any file one the server stores rather than refuses: bytes that are not UTF-8
// and NUL characters become U+FFFD, and a line longer than MaxLogMessageBytes is cut at a character
// boundary.
func mendLine(line string) string {
	if !utf8.ValidString(line) {
		line = strings.ToValidUTF8(line, "\uFFFD")
	}
	if strings.IndexByte(line, 0) >= 0 {
		line = strings.ReplaceAll(line, "\x00", "\uFFFD")
	}
	if len(line) > MaxLogMessageBytes {
		cut := MaxLogMessageBytes
		for !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut]
	}
	return line
}

// Flush hands pending entries to put in batches of at most maxEntries, then saves the offsets.
// If put fails the entries stay pending and the offsets are not saved.
func (t *Tailer) Flush(maxEntries int, put func([]LogEntry) error) error {
	for len(t.pending) > 0 {
		n := min(len(t.pending), maxEntries)
		if err := put(t.pending[:n]); err != nil {
			return err
		}
		t.pending = t.pending[n:]
	}
	t.pending, t.pendSize = nil, 0
	return t.saveState()
}

func (t *Tailer) saveState() error {
	for p, tf := range t.files {
		t.saved[p] = fileState{Inode: tf.inode, Offset: tf.offset}
	}
	b, err := json.Marshal(t.saved)
	if err != nil {
		return fmt.Errorf("encode tail state: %w", err)
	}
	tmp := t.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save tail state: %w", err)
	}
	if err := os.Rename(tmp, t.statePath); err != nil {
		return fmt.Errorf("save tail state: %w", err)
	}
	return nil
}

// Close releases the open files.
func (t *Tailer) Close() {
	for _, tf := range t.files {
		tf.f.Close()
	}
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

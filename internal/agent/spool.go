package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Batch kinds decide the endpoint a spooled body goes to.
const (
	KindMetrics = "metrics"
	KindLogs    = "logs"
)

// Spool keeps gzip-compressed request bodies on disk until the server has answered them. Files are
// named <sequence>.<kind>.gz, so the directory listing is the delivery order and survives restarts.
// When the spool exceeds its size limit the oldest batches are deleted first and counted.
type Spool struct {
	dir      string
	maxBytes int64

	mu      sync.Mutex
	items   []SpoolItem // oldest first
	size    int64
	nextSeq uint64
	dropped uint64
}

// SpoolItem is one spooled batch.
type SpoolItem struct {
	Seq  uint64
	Kind string
	Size int64
}

func (it SpoolItem) fileName() string { return fmt.Sprintf("%020d.%s.gz", it.Seq, it.Kind) }

// OpenSpool loads the batches a previous run left in dir.
func OpenSpool(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool dir: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, nextSeq: 1}
	for _, e := range entries {
		parts := strings.Split(e.Name(), ".")
		if e.IsDir() || len(parts) != 3 || parts[2] != "gz" || (parts[1] != KindMetrics && parts[1] != KindLogs) {
			if strings.HasSuffix(e.Name(), ".tmp") {
				_ = os.Remove(filepath.Join(dir, e.Name())) // a write the last run did not finish
			}
			continue
		}
		seq, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.items = append(s.items, SpoolItem{Seq: seq, Kind: parts[1], Size: info.Size()})
		s.size += info.Size()
		if seq >= s.nextSeq {
			s.nextSeq = seq + 1
		}
	}
	sort.Slice(s.items, func(i, j int) bool { return s.items[i].Seq < s.items[j].Seq })
	return s, nil
}

// Put stores body durably (write to a temporary file, fsync, rename) and then enforces the size limit.
// The newest batch is never dropped by its own Put.
func (s *Spool) Put(kind string, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := SpoolItem{Seq: s.nextSeq, Kind: kind, Size: int64(len(body))}
	s.nextSeq++
	final := filepath.Join(s.dir, it.fileName())
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool batch: %w", err)
	}
	_, werr := f.Write(body)
	serr := f.Sync()
	cerr := f.Close()
	if err := firstErr(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool batch: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("spool batch: %w", err)
	}
	s.items = append(s.items, it)
	s.size += it.Size
	for s.size > s.maxBytes && len(s.items) > 1 {
		old := s.items[0]
		s.items = s.items[1:]
		s.size -= old.Size
		s.dropped++
		_ = os.Remove(filepath.Join(s.dir, old.fileName()))
	}
	return nil
}

// Oldest returns the batch to deliver next.
func (s *Spool) Oldest() (SpoolItem, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items) == 0 {
		return SpoolItem{}, false
	}
	return s.items[0], true
}

// Read returns a batch's body; os.ErrNotExist means the size limit dropped it meanwhile.
func (s *Spool) Read(it SpoolItem) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, it.fileName()))
}

// Remove deletes a batch the server has answered.
func (s *Spool) Remove(it SpoolItem) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.items {
		if x.Seq == it.Seq {
			s.items = append(s.items[:i:i], s.items[i+1:]...)
			s.size -= x.Size
			break
		}
	}
	if err := os.Remove(filepath.Join(s.dir, it.fileName())); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove spooled batch: %w", err)
	}
	return nil
}

// Items lists the spooled batches, oldest first.
func (s *Spool) Items() []SpoolItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SpoolItem(nil), s.items...)
}

// Stats reports what is spooled and how many batches the size limit has dropped since this process started.
func (s *Spool) Stats() (batches int, bytes int64, dropped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items), s.size, s.dropped
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

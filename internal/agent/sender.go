package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// gzipJSON encodes v as gzip-compressed JSON, the form batches are spooled and sent in.
func gzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
}

// outcome is what the server's answer means for a spooled batch.
type outcome int

const (
	delivered outcome = iota // 2xx: delete it
	rejected                 // 400 and friends: retrying cannot help; delete and count it
	retry                    // 429, 5xx, network: keep it and try again later
)

// Sender posts spooled bodies to the server. It never logs the API key: errors name the URL only.
type Sender struct {
	BaseURL string
	APIKey  string
	Client  *http.Client
}

// send posts one gzip body and classifies the answer; retryAfter is the server's Retry-After, if any.
func (s *Sender) send(ctx context.Context, kind string, body []byte) (outcome, time.Duration, error) {
	path := "/api/v1/ingest"
	if kind == KindLogs {
		path = "/api/v1/logs"
	}
	url := strings.TrimRight(s.BaseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return rejected, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	resp, err := s.Client.Do(req)
	if err != nil {
		return retry, 0, fmt.Errorf("post %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode/100 == 2:
		return delivered, 0, nil
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusRequestEntityTooLarge:
		return rejected, 0, fmt.Errorf("post %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	default:
		return retry, parseRetryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("post %s: %s", url, resp.Status)
	}
}

func parseRetryAfter(v string) time.Duration {
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// Backoff computes retry delays: exponential from Min to Max with full jitter, never shorter than
// what the server asked for in Retry-After (up to Max, so a hostile header cannot park the agent).
type Backoff struct {
	Min, Max time.Duration
}

func (b Backoff) delay(attempt int, retryAfter time.Duration) time.Duration {
	d := b.Min << min(attempt, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, b.Max)
	}
	return d
}

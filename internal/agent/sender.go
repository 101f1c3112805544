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
	rejected                 // a 4xx that refuses the batch itself (400, 413, 422 …): retrying cannot help; delete and count it
	retry                    // nothing wrong with the batch: keep it and try again later, for as long as it takes
	failed                   // the server failed on this batch (500 and other 5xx): try again, but not for ever
)

// classify maps a status code to what it means for the batch. 408 and 429 ask to come back later, and
// 502, 503 and 504 say the server or its database is unavailable: the batch waits. 401, 403 and 404 say
// the agent's key, its tenant or the server address is wrong, which is the same for every batch: the
// batch waits in the spool (bounded by its size) until the configuration is fixed, rather than the
// spool being emptied. Any other 4xx refuses the batch itself. Any other 5xx may be the batch's doing
// (a batch the server cannot handle), so it is retried a bounded number of times (Options.MaxAttempts).
func classify(status int) outcome {
	switch {
	case status/100 == 2:
		return delivered
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusNotFound,
		status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return retry
	case status/100 == 4:
		return rejected
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return retry
	case status/100 == 5:
		return failed
	}
	return retry
}

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
	res := classify(resp.StatusCode)
	switch res {
	case delivered:
		return delivered, 0, nil
	case rejected:
		return rejected, 0, fmt.Errorf("post %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	// The request id lets the server's operators find what went wrong in its log.
	return res, parseRetryAfter(resp.Header.Get("Retry-After")),
		fmt.Errorf("post %s: %s (request id %s)", url, resp.Status, resp.Header.Get("X-Request-Id"))
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

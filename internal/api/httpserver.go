package api

import (
	"net/http"
	"time"
)

// HTTPTimeouts bound how long a client may take to send a request, so that slow or idle connections
// cannot pile up. There is no write timeout: the live stream answers for as long as the client listens.
type HTTPTimeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, headers and body. Once the body is read, the handler takes
	// as long as it needs.
	Read time.Duration
	// Idle bounds how long a keep-alive connection may wait for its next request.
	Idle time.Duration
}

// NewHTTPServer returns the HTTP server for handler with the given timeouts; zero fields take
// DefaultConfig's. The headers' bound is never longer than the whole request's.
func NewHTTPServer(handler http.Handler, t HTTPTimeouts) *http.Server {
	def := DefaultConfig().HTTP
	if t.Read <= 0 {
		t.Read = def.Read
	}
	if t.ReadHeader <= 0 {
		t.ReadHeader = min(def.ReadHeader, t.Read)
	}
	if t.Idle <= 0 {
		t.Idle = def.Idle
	}
	// ReadTimeout's deadline ends once the body is read (net/http clears it), so it does not cut the
	// live stream or a long query; a WriteTimeout would, so there is none.
	return &http.Server{Handler: handler, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, IdleTimeout: t.Idle,
		MaxHeaderBytes: 64 << 10}
}

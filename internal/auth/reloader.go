package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/infrawatch/infrawatch/internal/service"
)

// KeyReloadInterval is how often every process re-reads the signing keys: a key rotated by `infrawatch
// keys rotate` or another replica signs and verifies everywhere within it.
const KeyReloadInterval = time.Minute

// KeyReloader is the worker that reloads a process's signing keys (Tokens.Reload) every
// KeyReloadInterval, so that rotation and retirement need no restart. Every process runs one.
type KeyReloader struct {
	tokens *Tokens
	log    *slog.Logger
	loop   service.Loop
	// after waits for the next reload: time.After, or a tick the test sends.
	after func(time.Duration) <-chan time.Time
	// reloaded, in tests, receives the error of every reload.
	reloaded chan error
}

var _ service.Service = (*KeyReloader)(nil)

// NewKeyReloader returns the reloader of tokens; Start starts it.
func NewKeyReloader(tokens *Tokens, log *slog.Logger) *KeyReloader {
	r := &KeyReloader{tokens: tokens, log: log, after: time.After}
	r.loop.Run = r.run
	return r
}

// Start reloads every KeyReloadInterval until Stop.
func (r *KeyReloader) Start(ctx context.Context) error { return r.loop.Start(ctx) }

// Stop ends the reloading and returns once it has ended.
func (r *KeyReloader) Stop() { r.loop.Stop() }

func (r *KeyReloader) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.after(KeyReloadInterval):
		}
		err := r.tokens.Reload(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("reload token signing keys", "err", err)
		}
		if r.reloaded != nil {
			r.reloaded <- err
		}
	}
}

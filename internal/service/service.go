// Package service is the one contract of the long-running workers a process runs — the samples writer,
// the poller engine, the stream hub, maintenance, and what comes after them — so that starting and
// stopping a process is a list: start them in order, stop them in reverse.
//
// It holds no worker itself and must never learn about any: a worker's package implements Service.
package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Service is a worker that runs in the background between Start and Stop.
type Service interface {
	// Start begins the work and returns once it has begun, or the reason it could not. The work goes on
	// until Stop, or until ctx ends.
	Start(ctx context.Context) error
	// Stop ends the work and returns once it has ended. Calling it before Start, or twice, does nothing.
	Stop()
}

// Loop is a Service that runs one blocking function, for workers whose work is a loop until their
// context ends. Embed it, or use it as it is.
type Loop struct {
	// Run does the work until ctx ends.
	Run func(ctx context.Context)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs l.Run in a goroutine of its own.
func (l *Loop) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return errors.New("service: started twice")
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		l.Run(ctx)
	}()
	return nil
}

// Stop cancels the context of l.Run and waits for it to return.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done
}

// Named is a Service with the name a process logs it by.
type Named struct {
	Name string
	Service
}

// Group starts services in order and stops them in reverse order, so that a service may rely on those
// before it for as long as it runs (the samples writer first, the poller that writes through it after).
type Group []Named

// Start starts each service in order. When one fails, those already started are stopped again, in
// reverse order, and the error names the one that failed.
func (g Group) Start(ctx context.Context) error {
	for i, s := range g {
		if err := s.Start(ctx); err != nil {
			g[:i].Stop()
			return fmt.Errorf("start %s: %w", s.Name, err)
		}
	}
	return nil
}

// Stop stops every service, the last started first.
func (g Group) Stop() {
	for i := len(g) - 1; i >= 0; i-- {
		g[i].Stop()
	}
}

// Package replicas keeps the list of a deployment's live processes and their roles
// (infrawatch.replicas), for what is divided among the replicas of a role: a tenant's ingest rate is
// divided among the live ingest replicas (internal/ingest), so that spreading pushes over replicas
// does not multiply it.
//
// Every process beats at Start, then every Interval, and leaves at Stop, so that a graceful shutdown
// hands its share back at once; a killed process's row stops being counted once it is older than
// Alive, and is deleted by another's beat once older than Dead. Times are the database's.
package replicas

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/service"
)

const (
	// Interval is the time between two beats of a process.
	Interval = 10 * time.Second
	// Alive is how recent a beat must be for its process to count: three beats, so that one slow beat
	// does not change the count.
	Alive = 3 * Interval
	// Dead is how old a row is when a beat deletes it.
	Dead = time.Hour
)

// Heartbeat writes the process's row. It is a service.Service.
type Heartbeat struct {
	id     string
	roles  []string
	system *db.System
	log    *slog.Logger
	loop   service.Loop
}

// NewHeartbeat returns the heartbeat of a process with roles; its id is the host's name, the process id
// and a random suffix, so that a restarted process is a new replica.
func NewHeartbeat(system *db.System, roles []string, log *slog.Logger) *Heartbeat {
	host, _ := os.Hostname()
	id := host + "/" + strconv.Itoa(os.Getpid()) + "/" + uuid.NewString()[:8]
	h := &Heartbeat{id: id, roles: roles, system: system, log: log}
	h.loop.Run = h.run
	return h
}

// ID is the process's row id.
func (h *Heartbeat) ID() string { return h.id }

// Start beats once, so that the process counts before it serves, then every Interval until Stop.
func (h *Heartbeat) Start(ctx context.Context) error {
	if err := h.Beat(ctx); err != nil {
		return err
	}
	return h.loop.Start(ctx)
}

func (h *Heartbeat) run(ctx context.Context) {
	ticker := time.NewTicker(Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			if err := h.Beat(ctx); err != nil {
				h.log.Warn("replica heartbeat failed", "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// Stop ends the beats and deletes the process's row: its share goes to the other replicas at once.
func (h *Heartbeat) Stop() {
	h.loop.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.system.Queries().ReplicaLeave(ctx, h.id); err != nil {
		h.log.Warn("replica heartbeat: leave", "err", err)
	}
}

// Beat writes the process's row now and deletes the rows of processes dead for an hour.
func (h *Heartbeat) Beat(ctx context.Context) error {
	q := h.system.Queries()
	if err := q.ReplicaBeat(ctx, dbsqlc.ReplicaBeatParams{ID: h.id, Roles: h.roles}); err != nil {
		return fmt.Errorf("replica heartbeat: %w", err)
	}
	if _, err := q.ReplicasForgetDead(ctx, Dead); err != nil {
		return fmt.Errorf("replica heartbeat: forget dead replicas: %w", err)
	}
	return nil
}

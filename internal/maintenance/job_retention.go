package maintenance

import (
	"context"
	"errors"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// retentionKind is the storage pass (RunOnce), every Interval in both flavors: it creates partitions
// ahead (postgres flavor), keeps TimescaleDB's policies in step with the flags (timescale flavor) and
// drops data past its retention. infrawatch always runs it; TimescaleDB has no job of it.
type retentionKind struct{}

func (retentionKind) name() string { return "retention" }

func (retentionKind) cost() string {
	return "data past its retention stays, and in the postgres flavor pushes fail once the partitions made ahead run out"
}

// behind is never: the pass does all of its work or none.
func (retentionKind) behind(*Job, time.Time) (string, string) { return "", "" }

func (retentionKind) step(context.Context, *Service, *dbsqlc.Queries, *Job, time.Time) (*time.Time, error) {
	return nil, errors.New("retention runs in the storage pass, not as a job taken over from TimescaleDB")
}

package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// compressChunksPerPass bounds the chunks infrawatch compresses in one pass for one hypertable, oldest
// first. A chunk is the unit of compression and takes what it takes (a day of 100 series at one sample a
// minute, 144,000 rows, took 60 ms here; a day of a million 10-second series takes about an hour), so a
// pass starts at most this many and none after its deadline.
const compressChunksPerPass = 4

// compressionKind is the compression of one raw hypertable's chunks older than --compress-after
// (timescale flavor: TimescaleDB's compression policy; the postgres flavor compresses nothing).
type compressionKind struct{}

func (compressionKind) name() string { return "compression" }

func (compressionKind) cost() string {
	return "raw chunks stay uncompressed and take several times the disk (ten times, on this project's samples)"
}

// behind reports chunks that have waited longer than the schedule explains: a chunk becomes due when
// its end is compress_after old, and a run comes every interval (twice, if one is late).
func (compressionKind) behind(j *Job, now time.Time) (string, string) {
	if j.BacklogChunks == nil || *j.BacklogChunks == 0 || j.OldestBacklogEnd == nil {
		return "", ""
	}
	every := j.Infrawatch.Every
	if j.Runner == RunnerTimescaleDB && j.TimescaleDB != nil {
		every = j.TimescaleDB.Every
	}
	due := j.OldestBacklogEnd.Add(j.compressAfter)
	if now.Sub(due) <= 2*every+time.Minute {
		return "", ""
	}
	problem := fmt.Sprintf("%d chunks of %s older than %s are not compressed; the oldest has waited since %s.",
		*j.BacklogChunks, j.Relation, formatDays(j.compressAfter), stamp(due))
	if j.Runner == RunnerInfrawatch {
		return problem, fmt.Sprintf("infrawatch's scheduler is catching up, at most %d chunks per pass, oldest first. "+
			"If the backlog keeps growing, see the scheduler's log.", compressChunksPerPass)
	}
	return problem, "TimescaleDB's runs succeed but leave chunks behind: see timescaledb_information.job_stats; " +
		"--timescale-jobs=infrawatch makes infrawatch compress them."
}

// step compresses the oldest due chunks, at most compressChunksPerPass and none after deadline. Each
// chunk commits on its own.
func (compressionKind) step(ctx context.Context, s *Service, q *dbsqlc.Queries, j *Job, deadline time.Time) (*time.Time, error) {
	olderThan := s.clock.Now().Add(-j.compressAfter)
	for range compressChunksPerPass {
		if !s.clock.Now().Before(deadline) {
			break
		}
		chunk, err := q.StorageCompressOldestChunk(ctx, dbsqlc.StorageCompressOldestChunkParams{Hypertable: j.Relation, OlderThan: olderThan})
		if err != nil {
			return nil, fmt.Errorf("compress a chunk of %s: %w", j.Relation, err)
		}
		if chunk == "" {
			break
		}
		s.log.Info("compressed chunk", "table", j.Relation, "chunk", chunk)
	}
	return nil, nil
}

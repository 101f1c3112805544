package maintenance_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// BenchmarkSamplesCopy measures what the rollups cost ingest in the postgres flavor: one binary COPY of
// 100,000 samples (10,000 series, the last 100 seconds) into ts.samples as migrated (BRIN index and
// invalidation trigger), without the trigger, and without either. Each iteration copies once in each
// configuration, one after the other into the same emptied table, so that a busy machine slows them
// alike; the rows are encoded before the clock starts, so only the server's work counts. It reports the
// median per row of each configuration. Run it with
//
//	go test -run '^$' -bench SamplesCopy -benchtime 15x ./internal/maintenance
func BenchmarkSamplesCopy(b *testing.B) {
	const series, perSeries = 10_000, 10
	variants := []struct{ name, setup string }{
		{"migrated", "ALTER TABLE ts.samples ENABLE TRIGGER samples_rollup_invalidation; " +
			"CREATE INDEX samples_time_brin ON ts.samples USING brin (time) WITH (autosummarize = on)"},
		{"no-trigger", "ALTER TABLE ts.samples DISABLE TRIGGER samples_rollup_invalidation; " +
			"CREATE INDEX samples_time_brin ON ts.samples USING brin (time) WITH (autosummarize = on)"},
		{"no-trigger-no-brin", "ALTER TABLE ts.samples DISABLE TRIGGER samples_rollup_invalidation"},
	}
	ctx := context.Background()
	d := dbtest.New(b, db.FlavorPostgres)
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	buf := encodeSamples(uuid.New(), time.Now().Add(-100*time.Second), series, perSeries)
	took := make([][]time.Duration, len(variants))
	b.ResetTimer()
	for range b.N {
		for i, v := range variants {
			_, err := conn.Exec(ctx, "TRUNCATE ts.samples, infrawatch.rollup_invalidations; DROP INDEX IF EXISTS ts.samples_time_brin; "+v.setup)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf),
				"COPY ts.samples (time, tenant_id, series_id, value) FROM STDIN (FORMAT binary)"); err != nil {
				b.Fatal(err)
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	for i, v := range variants {
		slices.Sort(took[i])
		b.ReportMetric(float64(took[i][len(took[i])/2].Nanoseconds())/(series*perSeries), "ns/row-"+v.name)
	}
}

// encodeSamples writes PostgreSQL's binary COPY stream of ts.samples (time, tenant_id, series_id, value),
// as ingest does: perSeries samples of each series, 10 seconds apart from start.
func encodeSamples(tenant uuid.UUID, start time.Time, series, perSeries int) []byte {
	epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	buf := append(make([]byte, 0, 19+series*perSeries*46+2), "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	for s := range series {
		for i := range perSeries {
			buf = binary.BigEndian.AppendUint16(buf, 4)
			buf = binary.BigEndian.AppendUint32(buf, 8)
			buf = binary.BigEndian.AppendUint64(buf, uint64(start.Add(time.Duration(i)*10*time.Second).UnixMicro()-epoch))
			buf = binary.BigEndian.AppendUint32(buf, 16)
			buf = append(buf, tenant[:]...)
			buf = binary.BigEndian.AppendUint32(buf, 8)
			buf = binary.BigEndian.AppendUint64(buf, uint64(s+1))
			buf = binary.BigEndian.AppendUint32(buf, 8)
			buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(float64(i)))
		}
	}
	return binary.BigEndian.AppendUint16(buf, 0xffff)
}

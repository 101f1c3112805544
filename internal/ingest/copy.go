package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL's binary COPY format for ts.samples (time, tenant_id, series_id, value), written by hand:
// it costs a fraction of encoding each value through pgx's type map, and ingest is the hot path.
// See https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format".

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// postgresEpoch is 2000-01-01 UTC, where binary timestamps count microseconds from.
var postgresEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// encodeSamples appends the binary COPY stream of every row of batch to buf.
func encodeSamples(buf []byte, batch []*request) []byte {
	buf = append(buf, copySignature...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension length
	for _, req := range batch {
		r := req.rows
		for i := range r.times {
			buf = binary.BigEndian.AppendUint16(buf, 4) // fields
			buf = binary.BigEndian.AppendUint32(buf, 8)
			buf = binary.BigEndian.AppendUint64(buf, uint64(r.times[i].UnixMicro()-postgresEpoch))
			buf = binary.BigEndian.AppendUint32(buf, 16)
			buf = append(buf, r.tenant.Bytes[:]...)
			buf = binary.BigEndian.AppendUint32(buf, 8)
			buf = binary.BigEndian.AppendUint64(buf, uint64(r.series[i]))
			buf = binary.BigEndian.AppendUint32(buf, 8)
			buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(r.values[i]))
		}
	}
	return binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
}

// copySamples streams batch into table (ts.samples or the temporary staging table) within tx.
func copySamples(ctx context.Context, tx pgx.Tx, table string, batch []*request) error {
	n := 0
	for _, r := range batch {
		n += r.rows.len()
	}
	buf := encodeSamples(make([]byte, 0, 19+n*46+2), batch)
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf),
		fmt.Sprintf("COPY %s (time, tenant_id, series_id, value) FROM STDIN (FORMAT binary)", table))
	return err
}

package api_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// remoteWrite1 is a remote write 1.0 body (a snappy block of a prometheus.WriteRequest) with one series
// of the given name and one sample at ms.
func remoteWrite1(name string, ms int64, value float64) []byte {
	label := protowire.AppendTag(nil, 1, protowire.BytesType) // Label.name
	label = protowire.AppendString(label, "__name__")
	label = protowire.AppendTag(label, 2, protowire.BytesType) // Label.value
	label = protowire.AppendString(label, name)
	sample := protowire.AppendTag(nil, 1, protowire.Fixed64Type) // Sample.value
	sample = protowire.AppendFixed64(sample, math.Float64bits(value))
	sample = protowire.AppendTag(sample, 2, protowire.VarintType) // Sample.timestamp
	sample = protowire.AppendVarint(sample, uint64(ms))
	series := protowire.AppendTag(nil, 1, protowire.BytesType) // TimeSeries.labels
	series = protowire.AppendBytes(series, label)
	series = protowire.AppendTag(series, 2, protowire.BytesType) // TimeSeries.samples
	series = protowire.AppendBytes(series, sample)
	req := protowire.AppendTag(nil, 1, protowire.BytesType) // WriteRequest.timeseries
	req = protowire.AppendBytes(req, series)
	return snappy.Encode(nil, req)
}

// Remote write 2.0 bodies (io.prometheus.write.v2.Request) are a different message: read as 1.0 they
// hold no series, so they were answered 204 and every sample was lost. They are refused with 415, as
// the 2.0 specification asks of a receiver that does not take them, so a sender falls back to 1.0.
// A 1.0 body says so by no proto parameter or by proto=prometheus.WriteRequest.
func TestRemoteWriteRefusesMessagesItCannotRead(t *testing.T) {
	w := newWorld(t, testLimits)
	key := w.ingestKey(t, w.a)
	now := time.Now().UnixMilli()
	cases := []struct {
		contentType string
		status      int
		want        string
	}{
		{"application/x-protobuf;proto=io.prometheus.write.v2.Request", http.StatusUnsupportedMediaType, "io.prometheus.write.v2.Request"},
		{"application/x-protobuf; proto=something.Else", http.StatusUnsupportedMediaType, "prometheus.WriteRequest"},
		{"application/json", http.StatusUnsupportedMediaType, "application/x-protobuf"},
		{"application/x-protobuf;proto=prometheus.WriteRequest", http.StatusNoContent, ""},
		{"application/x-protobuf", http.StatusNoContent, ""},
	}
	for i, c := range cases {
		got := w.raw(t, "/api/v1/prom/write", key, remoteWrite1("rw_case", now+int64(i), float64(i)),
			"Content-Encoding", "snappy", "Content-Type", c.contentType, "X-Prometheus-Remote-Write-Version", "0.1.0")
		if got.status != c.status || !strings.Contains(got.raw, c.want) {
			t.Errorf("Content-Type %s: %d %s, want %d containing %q", c.contentType, got.status, got.raw, c.status, c.want)
		}
	}
	var values []float64
	for _, s := range w.samples(t) {
		if s.name == "rw_case" {
			values = append(values, s.value)
		}
	}
	if len(values) != 2 || values[0] != 3 || values[1] != 4 {
		t.Fatalf("stored values %v, want [3 4]: exactly the two 1.0 bodies", values)
	}
}

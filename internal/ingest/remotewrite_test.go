package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// A small remote write encoder: each helper returns the bytes of one message, so that tests can also
// build messages a correct sender never would.

// rwtStaleNaN is the Prometheus stale marker.
var rwtStaleNaN = math.Float64frombits(0x7ff0000000000002)

func rwtBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// rwtLabel encodes a Label.
func rwtLabel(name, value string) []byte {
	b := protowire.AppendTag(nil, rwLabelName, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, rwLabelValue, protowire.BytesType)
	return protowire.AppendString(b, value)
}

// rwtSample encodes a Sample.
func rwtSample(v float64, ts int64) []byte {
	b := protowire.AppendTag(nil, rwSampleValue, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(v))
	b = protowire.AppendTag(b, rwSampleTimestamp, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(ts))
}

// rwtSeries encodes a TimeSeries from label name/value pairs (in the order given) and samples.
func rwtSeries(labels []string, samples ...Sample) []byte {
	var b []byte
	for i := 0; i+1 < len(labels); i += 2 {
		b = rwtBytes(b, rwTimeSeriesLabels, rwtLabel(labels[i], labels[i+1]))
	}
	for _, s := range samples {
		b = rwtBytes(b, rwTimeSeriesSamples, rwtSample(s.Value, s.TimeMs))
	}
	return b
}

// rwtRequest encodes a WriteRequest from encoded TimeSeries.
func rwtRequest(series ...[]byte) []byte {
	var b []byte
	for _, s := range series {
		b = rwtBytes(b, rwWriteRequestTimeseries, s)
	}
	return b
}

func rwtCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// rwtUnknownFields encodes one field of every wire type under numbers no remote write message uses.
func rwtUnknownFields() []byte {
	b := protowire.AppendTag(nil, 100, protowire.VarintType)
	b = protowire.AppendVarint(b, 12345)
	b = protowire.AppendTag(b, 101, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	b = protowire.AppendTag(b, 102, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	b = rwtBytes(b, 103, []byte("ignored"))
	b = protowire.AppendTag(b, 104, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	return protowire.AppendTag(b, 104, protowire.EndGroupType)
}

func rwtTag(num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(nil, num, typ)
}

func TestDecodeRemoteWrite(t *testing.T) {
	t.Parallel()

	node := []string{"__name__", "node_cpu_seconds_total", "cpu", "0", "host", "web-1", "mode", "idle"}
	up := []string{"__name__", "up", "instance", "10.0.0.1:9100", "job", "node"}
	wantNode := Series{
		Name:    "node_cpu_seconds_total",
		Labels:  map[string]string{"cpu": "0", "host": "web-1", "mode": "idle"},
		Host:    "web-1",
		Samples: []Sample{{1700000000000, 12.5}, {1700000015000, 13.25}, {1700000030000, 14}},
	}
	wantUp := Series{
		Name:    "up",
		Labels:  map[string]string{"instance": "10.0.0.1:9100", "job": "node"},
		Samples: []Sample{{-5, 1}, {0, 0}},
	}
	manyLabels, manyLabelsWant := []string{"__name__", "up"}, map[string]string{}
	for i := range 40 {
		k, v := fmt.Sprintf("l%02d", i), fmt.Sprint(i)
		manyLabels, manyLabelsWant[k] = append(manyLabels, k, v), v
	}
	nodeSeries := rwtSeries(node, wantNode.Samples...)
	upSeries := rwtSeries(up, wantUp.Samples...)
	one := Sample{1, 1}

	histogram := rwtBytes(nil, rwTimeSeriesHistograms, []byte{0x08, 0x01}) // Histogram{count_int: 1}
	metadata := rwtBytes(nil, 3, rwtCat(
		protowire.AppendVarint(rwtTag(1, protowire.VarintType), 1), // type COUNTER
		rwtBytes(nil, 2, []byte("up")),                             // metric_family_name
		rwtBytes(nil, 4, []byte("help text")),                      // help
	))
	exemplar := rwtBytes(nil, 3, rwtBytes(nil, 1, rwtLabel("trace_id", "abc")))

	tests := []struct {
		name    string
		pb      []byte // encoded WriteRequest, snappy-compressed by the test
		body    []byte // raw body, when set instead of pb
		want    []Series
		wantRej []Rejection // Reason holds a substring
		wantErr string      // substring of the error
	}{
		{
			name: "two series",
			pb:   rwtRequest(nodeSeries, upSeries),
			want: []Series{wantNode, wantUp},
		},
		{
			name: "empty request",
			pb:   nil,
		},
		{
			name: "series without samples yields nothing",
			pb:   rwtRequest(rwtSeries(up), nodeSeries),
			want: []Series{wantNode},
		},
		{
			name: "series without samples yields nothing, whatever its labels",
			pb:   rwtRequest(rwtSeries([]string{"job", "x"}), rwtSeries(nil), upSeries),
			want: []Series{wantUp},
		},
		{
			name:    "missing __name__",
			pb:      rwtRequest(upSeries, rwtSeries([]string{"job", "node"}, one)),
			want:    []Series{wantUp},
			wantRej: []Rejection{{1, -1, "missing __name__"}},
		},
		{
			name:    "empty label set",
			pb:      rwtRequest(rwtSeries(nil, one), upSeries),
			want:    []Series{wantUp},
			wantRej: []Rejection{{0, -1, "empty label set"}},
		},
		{
			name:    "unsorted labels",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "job", "node", "instance", "x"}, one)),
			wantRej: []Rejection{{0, -1, `label "instance": not sorted, comes after "job"`}},
		},
		{
			name:    "duplicate label name",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "job", "a", "job", "b"}, one)),
			wantRej: []Rejection{{0, -1, `label "job": repeated`}},
		},
		{
			name:    "duplicate __name__",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "__name__", "down"}, one)),
			wantRej: []Rejection{{0, -1, `label "__name__": repeated`}},
		},
		{
			name:    "empty label value",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "job", ""}, one), upSeries),
			want:    []Series{wantUp},
			wantRej: []Rejection{{0, -1, `label "job": empty value`}},
		},
		{
			name:    "empty metric name",
			pb:      rwtRequest(rwtSeries([]string{"__name__", ""}, one)),
			wantRej: []Rejection{{0, -1, `label "__name__": empty value`}},
		},
		{
			name:    "invalid label name",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "job-name", "node"}, one)),
			wantRej: []Rejection{{0, -1, `label "job-name": invalid name`}},
		},
		{
			name:    "label name starting with a digit",
			pb:      rwtRequest(rwtSeries([]string{"0job", "node", "__name__", "up"}, one)),
			wantRej: []Rejection{{0, -1, `label "0job": invalid name`}},
		},
		{
			name:    "empty label name",
			pb:      rwtRequest(rwtSeries([]string{"", "x", "__name__", "up"}, one)),
			wantRej: []Rejection{{0, -1, `label "": invalid name`}},
		},
		{
			name: "reserved label names are accepted",
			pb:   rwtRequest(rwtSeries([]string{"__name__", "up", "__tenant", "x", "_a1", "y"}, one)),
			want: []Series{{Name: "up", Labels: map[string]string{"__tenant": "x", "_a1": "y"}, Samples: []Sample{one}}},
		},
		{
			name:    "label value not UTF-8",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "job", "\xff"}, one)),
			wantRej: []Rejection{{0, -1, `label "job": value is not valid UTF-8`}},
		},
		{
			name:    "label value with NUL",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", "job", "a\x00b"}, one)),
			wantRej: []Rejection{{0, -1, `label "job": value contains a NUL byte`}},
		},
		{
			name:    "long invalid label name is cut in the reason",
			pb:      rwtRequest(rwtSeries([]string{"__name__", "up", strings.Repeat("-", 1000), "x"}, one)),
			wantRej: []Rejection{{0, -1, `"` + strings.Repeat("-", 64) + `"…: invalid name`}},
		},
		{
			name: "unknown fields skipped",
			pb: rwtCat(rwtUnknownFields(), rwtRequest(rwtCat(
				rwtUnknownFields(),
				rwtBytes(nil, rwTimeSeriesLabels, rwtCat(rwtLabel("__name__", "up"), rwtUnknownFields())),
				rwtBytes(nil, rwTimeSeriesLabels, rwtCat(rwtUnknownFields(), rwtLabel("job", "node"))),
				rwtBytes(nil, rwTimeSeriesSamples, rwtCat(rwtUnknownFields(), rwtSample(2, 3), rwtUnknownFields())),
				rwtUnknownFields(),
			)), rwtUnknownFields()),
			want: []Series{{Name: "up", Labels: map[string]string{"job": "node"}, Samples: []Sample{{3, 2}}}},
		},
		{
			name: "missing sample fields are zero",
			pb:   rwtRequest(rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("__name__", "up")), rwtBytes(nil, rwTimeSeriesSamples, nil))),
			want: []Series{{Name: "up", Labels: map[string]string{}, Samples: []Sample{{0, 0}}}},
		},
		{
			name: "metadata, reserved field and exemplars skipped",
			pb:   rwtCat(metadata, rwtBytes(nil, 2, []byte("cortex source")), rwtRequest(rwtCat(upSeries, exemplar)), metadata),
			want: []Series{wantUp},
		},
		{
			name:    "histogram series rejected, others kept",
			pb:      rwtRequest(nodeSeries, rwtCat(rwtSeries(up), histogram), rwtCat(rwtSeries(up, one), histogram), upSeries),
			want:    []Series{wantNode, wantUp},
			wantRej: []Rejection{{1, -1, "native histograms are not supported"}, {2, -1, "native histograms are not supported"}},
		},
		{
			name: "label fields in any order and long values",
			pb: rwtRequest(rwtCat(
				rwtBytes(nil, rwTimeSeriesLabels, rwtCat(rwtBytes(nil, rwLabelValue, []byte("up")), rwtBytes(nil, rwLabelName, []byte("__name__")))),
				rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("long", strings.Repeat("v", 300))),
				rwtBytes(nil, rwTimeSeriesSamples, rwtCat(protowire.AppendVarint(rwtTag(rwSampleTimestamp, protowire.VarintType), 9),
					protowire.AppendFixed64(rwtTag(rwSampleValue, protowire.Fixed64Type), math.Float64bits(0.5)))),
			)),
			want: []Series{{Name: "up", Labels: map[string]string{"long": strings.Repeat("v", 300)}, Samples: []Sample{{9, 0.5}}}},
		},
		{
			name: "many labels",
			pb:   rwtRequest(rwtSeries(manyLabels, one)),
			want: []Series{{Name: "up", Labels: manyLabelsWant, Samples: []Sample{one}}},
		},
		{
			name: "highly compressible body passes the expansion check",
			pb:   rwtCat(rwtBytes(nil, 100, bytes.Repeat([]byte{'a'}, 4<<20)), rwtRequest(upSeries)),
			want: []Series{wantUp},
		},
		{
			name: "last value of a repeated scalar field wins",
			pb:   rwtRequest(rwtCat(rwtSeries(up), rwtBytes(nil, rwTimeSeriesSamples, rwtCat(rwtSample(1, 1), rwtSample(2, 2))))),
			want: []Series{{Name: "up", Labels: wantUp.Labels, Samples: []Sample{{2, 2}}}},
		},
		{
			name:    "truncated protobuf",
			pb:      rwtRequest(nodeSeries, upSeries)[:len(nodeSeries)+10],
			wantErr: "protobuf: timeseries 1: unexpected EOF",
		},
		{
			name:    "truncated sample",
			pb:      rwtRequest(rwtCat(rwtSeries(up), rwtBytes(nil, rwTimeSeriesSamples, rwtSample(1, 1)[:5]))),
			wantErr: "protobuf: timeseries 0: sample 0: value: unexpected EOF",
		},
		{
			name:    "truncated label",
			pb:      rwtRequest(rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("__name__", "up")[:4]))),
			wantErr: "protobuf: timeseries 0: label 0: field 1: unexpected EOF",
		},
		{
			name:    "field number zero",
			pb:      rwtCat(rwtRequest(upSeries), []byte{0x00}),
			wantErr: "protobuf: write request after 1 timeseries",
		},
		{
			name:    "stray end group",
			pb:      rwtCat(rwtRequest(upSeries), rwtTag(9, protowire.EndGroupType)),
			wantErr: "protobuf: write request field 9",
		},
		{
			name:    "wire type: timeseries as varint",
			pb:      rwtCat(rwtRequest(upSeries), protowire.AppendVarint(rwtTag(rwWriteRequestTimeseries, protowire.VarintType), 1)),
			wantErr: "protobuf: timeseries 1: unexpected wire type 0",
		},
		{
			name:    "wire type: label as fixed64",
			pb:      rwtRequest(rwtCat(upSeries, protowire.AppendFixed64(rwtTag(rwTimeSeriesLabels, protowire.Fixed64Type), 1))),
			wantErr: "protobuf: timeseries 0: label 3: unexpected wire type 1",
		},
		{
			name:    "wire type: sample as group",
			pb:      rwtRequest(rwtCat(upSeries, rwtTag(rwTimeSeriesSamples, protowire.StartGroupType), rwtTag(rwTimeSeriesSamples, protowire.EndGroupType))),
			wantErr: "protobuf: timeseries 0: sample 2: unexpected wire type 3",
		},
		{
			name:    "wire type: label name as varint",
			pb:      rwtRequest(rwtBytes(nil, rwTimeSeriesLabels, protowire.AppendVarint(rwtTag(rwLabelName, protowire.VarintType), 1))),
			wantErr: "protobuf: timeseries 0: label 0: field 1: unexpected wire type 0",
		},
		{
			name:    "wire type: sample value as varint",
			pb:      rwtRequest(rwtCat(rwtSeries(up), rwtBytes(nil, rwTimeSeriesSamples, protowire.AppendVarint(rwtTag(rwSampleValue, protowire.VarintType), 1)))),
			wantErr: "protobuf: timeseries 0: sample 0: value: unexpected wire type 0",
		},
		{
			name:    "wire type: sample timestamp as fixed64",
			pb:      rwtRequest(rwtCat(rwtSeries(up), rwtBytes(nil, rwTimeSeriesSamples, protowire.AppendFixed64(rwtTag(rwSampleTimestamp, protowire.Fixed64Type), 1)))),
			wantErr: "protobuf: timeseries 0: sample 0: timestamp: unexpected wire type 1",
		},
		{
			name:    "wire type: histogram as varint",
			pb:      rwtRequest(rwtCat(upSeries, protowire.AppendVarint(rwtTag(rwTimeSeriesHistograms, protowire.VarintType), 1))),
			wantErr: "protobuf: timeseries 0: histogram: unexpected wire type 0",
		},
		{
			name:    "malformed protobuf after a rejected series fails the request",
			pb:      rwtRequest(rwtCat(rwtSeries([]string{"job", "x"}, one), rwtBytes(nil, rwTimeSeriesSamples, []byte{0x09}))),
			wantErr: "protobuf: timeseries 0: sample 1: value: unexpected EOF",
		},
		{
			name:    "corrupted snappy",
			body:    rwtCorruptSnappy(snappy.Encode(nil, rwtRequest(nodeSeries, upSeries))),
			wantErr: "snappy: snappy: corrupt input",
		},
		{
			name:    "truncated snappy",
			body:    snappy.Encode(nil, rwtRequest(nodeSeries, upSeries))[:20],
			wantErr: "snappy:",
		},
		{
			name:    "empty body",
			body:    []byte{},
			wantErr: "snappy: read block length",
		},
		{
			name:    "uncompressed protobuf",
			body:    rwtRequest(nodeSeries, upSeries),
			wantErr: "snappy:",
		},
		{
			name:    "framed snappy stream",
			body:    rwtFramedSnappy(t, rwtRequest(nodeSeries, upSeries)),
			wantErr: "snappy: body uses the framed stream format",
		},
		{
			name:    "declared length beyond what the block can hold",
			body:    rwtCat(protowire.AppendVarint(nil, 1<<20), []byte{0, 1, 2, 3}),
			wantErr: "snappy: block declares 1048576 decoded bytes, more than 7 compressed bytes can hold",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := tt.body
			if body == nil {
				body = snappy.Encode(nil, tt.pb)
			}
			got, rej, err := DecodeRemoteWrite(body, MaxRemoteWriteDecoded)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if got != nil || rej != nil {
					t.Fatalf("got %d series and %d rejections with an error", len(got), len(rej))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			rwtCheckSeries(t, got, tt.want)
			if len(rej) != len(tt.wantRej) {
				t.Fatalf("rejections = %+v, want %+v", rej, tt.wantRej)
			}
			for i, w := range tt.wantRej {
				if rej[i].Series != w.Series || rej[i].Sample != w.Sample || !strings.Contains(rej[i].Reason, w.Reason) {
					t.Errorf("rejection %d = %+v, want %+v (reason as substring)", i, rej[i], w)
				}
			}
		})
	}
}

func TestDecodeRemoteWriteSpecialValues(t *testing.T) {
	t.Parallel()

	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), rwtStaleNaN, math.Float64frombits(0x7ff8000000000001), math.Copysign(0, -1)}
	samples := make([]Sample, len(values))
	for i, v := range values {
		samples[i] = Sample{TimeMs: int64(i), Value: v}
	}
	body := snappy.Encode(nil, rwtRequest(rwtSeries([]string{"__name__", "x"}, samples...)))
	got, rej, err := DecodeRemoteWrite(body, MaxRemoteWriteDecoded)
	if err != nil || len(rej) != 0 || len(got) != 1 {
		t.Fatalf("got %v, %v, %v", got, rej, err)
	}
	for i, s := range got[0].Samples {
		if math.Float64bits(s.Value) != math.Float64bits(values[i]) || s.TimeMs != int64(i) {
			t.Errorf("sample %d = %#x at %d, want %#x", i, math.Float64bits(s.Value), s.TimeMs, math.Float64bits(values[i]))
		}
	}
}

func TestDecodeRemoteWriteTooLarge(t *testing.T) {
	// Not parallel: it measures the heap.
	const declared = 2_500_000_000 // 2.5 GB, within what a snappy header may declare
	body := rwtCat(protowire.AppendVarint(nil, declared), []byte{0x00, 0x01, 0x02, 0x03})

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, _, err := DecodeRemoteWrite(body, MaxRemoteWriteDecoded)
		if !errors.Is(err, ErrRemoteWriteTooLarge) {
			t.Fatalf("error = %v, want ErrRemoteWriteTooLarge", err)
		}
	}
	runtime.ReadMemStats(&after)
	if delta := after.TotalAlloc - before.TotalAlloc; delta > 1<<20 {
		t.Fatalf("ten refusals allocated %d bytes", delta)
	}

	if _, _, err := DecodeRemoteWrite(body, 0); !errors.Is(err, ErrRemoteWriteTooLarge) {
		t.Fatalf("with the default limit: error = %v, want ErrRemoteWriteTooLarge", err)
	}

	// The limit is the caller's: a real request just over it is refused too, one just under is not.
	pb := rwtRequest(rwtSeries([]string{"__name__", "x"}, Sample{1, 1}))
	if _, _, err := DecodeRemoteWrite(snappy.Encode(nil, pb), len(pb)-1); !errors.Is(err, ErrRemoteWriteTooLarge) {
		t.Fatalf("error = %v, want ErrRemoteWriteTooLarge", err)
	}
	if _, _, err := DecodeRemoteWrite(snappy.Encode(nil, pb), len(pb)); err != nil {
		t.Fatalf("error at the limit: %v", err)
	}
}

// TestDecodeRemoteWriteAmplification bounds the heap a hostile request can make the decoder use, per
// decoded byte, with bodies made of the smallest series of each kind. Accepted series cost their map
// whatever the decoder does; the bound is there to catch a regression, not to promise a small number.
func TestDecodeRemoteWriteAmplification(t *testing.T) {
	// Not parallel: it measures the heap.
	const maxDecoded = 1 << 18
	maxFactor := uint64(20)
	if raceDetector {
		maxFactor = 40
	}
	empty := rwtBytes(nil, rwTimeSeriesSamples, nil)
	for _, c := range []struct {
		name   string
		series []byte
	}{
		{"name only", rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("__name__", "a")), empty)},
		{"one label", rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("__name__", "a")), rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("b", "c")), empty)},
		{"many labels", rwtSeries([]string{"__name__", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}, Sample{})},
		{"many samples", rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("__name__", "a")), bytes.Repeat(empty, 1000))},
		{"no __name__", rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("a", "a")), empty)},
		{"invalid name", rwtCat(rwtBytes(nil, rwTimeSeriesLabels, rwtLabel("-", "a")), empty)},
		{"histogram", rwtBytes(nil, rwTimeSeriesHistograms, nil)},
		{"nothing", nil},
	} {
		var pb []byte
		for len(pb)+len(c.series)+4 < maxDecoded {
			pb = rwtBytes(pb, rwWriteRequestTimeseries, c.series)
		}
		body := snappy.Encode(nil, pb)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		series, rej, err := DecodeRemoteWrite(body, maxDecoded)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d series, %d rejections from %d bytes: %d bytes allocated (%.1f per byte)",
			c.name, len(series), len(rej), len(pb), alloc, float64(alloc)/float64(len(pb)))
		if alloc > maxFactor*maxDecoded {
			t.Errorf("%s: allocated %d bytes for %d decoded", c.name, alloc, len(pb))
		}
	}
}

// TestDecodeRemoteWriteNoAliasing checks that a result survives later calls, which reuse the pooled
// decode buffer.
func TestDecodeRemoteWriteNoAliasing(t *testing.T) {
	t.Parallel()

	first, _, err := DecodeRemoteWrite(snappy.Encode(nil, rwtRequest(rwtSeries([]string{"__name__", "aaaa", "host", "bbbb"}, Sample{1, 1}))), 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, _, err := DecodeRemoteWrite(snappy.Encode(nil, rwtRequest(rwtSeries([]string{"__name__", "zzzz", "host", "yyyy"}, Sample{2, 2}))), 0); err != nil {
			t.Fatal(err)
		}
	}
	rwtCheckSeries(t, first, []Series{{Name: "aaaa", Labels: map[string]string{"host": "bbbb"}, Host: "bbbb", Samples: []Sample{{1, 1}}}})
}

// rwtCheckSeries compares series, values by their bits.
func rwtCheckSeries(t *testing.T, got, want []Series) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d series %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Host != w.Host || fmt.Sprint(g.Labels) != fmt.Sprint(w.Labels) || g.Labels == nil {
			t.Errorf("series %d = %q %v host %q, want %q %v host %q", i, g.Name, g.Labels, g.Host, w.Name, w.Labels, w.Host)
		}
		if len(g.Samples) != len(w.Samples) {
			t.Errorf("series %d samples = %v, want %v", i, g.Samples, w.Samples)
			continue
		}
		for j := range w.Samples {
			if g.Samples[j].TimeMs != w.Samples[j].TimeMs || math.Float64bits(g.Samples[j].Value) != math.Float64bits(w.Samples[j].Value) {
				t.Errorf("series %d sample %d = %v, want %v", i, j, g.Samples[j], w.Samples[j])
			}
		}
	}
	// Appending to one series' samples must not overwrite the next one's.
	for i := range got {
		if len(got[i].Samples) != cap(got[i].Samples) {
			t.Errorf("series %d samples have spare capacity %d", i, cap(got[i].Samples)-len(got[i].Samples))
		}
	}
}

// rwtCorruptSnappy makes the first copy element of a block point before the start of the output.
func rwtCorruptSnappy(block []byte) []byte {
	b := bytes.Clone(block)
	_, n := protowire.ConsumeVarint(b)
	// The first element is a literal: make it a copy of 4 bytes from offset 0x7ff, before the start.
	b[n] = 0x01 | 0xe0
	b[n+1] = 0xff
	return b
}

func rwtFramedSnappy(t testing.TB, pb []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := snappy.NewBufferedWriter(&buf)
	if _, err := w.Write(pb); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rwtBenchRequest builds a request shaped like Prometheus' own: series × samples per series, with the
// label set of a node exporter CPU counter.
func rwtBenchRequest(series, samples int) []byte {
	var pb []byte
	for i := range series {
		labels := []string{
			"__name__", "node_cpu_seconds_total",
			"cpu", fmt.Sprint(i % 64),
			"host", fmt.Sprintf("web-%d", i/64),
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/64/250, i/64%250),
			"job", "node",
			"mode", []string{"idle", "user", "system", "iowait"}[i%4],
		}
		ss := make([]Sample, samples)
		for j := range ss {
			ss[j] = Sample{TimeMs: 1700000000000 + int64(j)*15000, Value: float64(i*j) + 0.25}
		}
		pb = rwtBytes(pb, rwWriteRequestTimeseries, rwtSeries(labels, ss...))
	}
	return snappy.Encode(nil, pb)
}

func BenchmarkDecodeRemoteWrite(b *testing.B) {
	for _, size := range []struct{ series, samples int }{{1000, 1}, {100, 100}, {10000, 1}} {
		b.Run(fmt.Sprintf("series=%d/samples=%d", size.series, size.samples), func(b *testing.B) {
			body := rwtBenchRequest(size.series, size.samples)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				series, rej, err := DecodeRemoteWrite(body, MaxRemoteWriteDecoded)
				if err != nil || len(rej) != 0 || len(series) != size.series {
					b.Fatalf("%d series, %v, %v", len(series), rej, err)
				}
			}
		})
	}
}

// FuzzDecodeRemoteWrite feeds raw bodies (compress false) and, so that the fuzzer reaches the protobuf
// walk instead of mostly exploring snappy errors, protobufs it compresses itself (compress true).
func FuzzDecodeRemoteWrite(f *testing.F) {
	up := []string{"__name__", "up", "host", "h", "job", "node"}
	valid := rwtRequest(rwtSeries(up, Sample{1, 1}, Sample{2, rwtStaleNaN}), rwtSeries([]string{"__name__", "x"}, Sample{3, math.Inf(1)}))
	seeds := [][]byte{
		valid,
		rwtCat(rwtUnknownFields(), valid, rwtBytes(nil, 3, []byte{0x08, 0x01})),
		rwtRequest(rwtCat(rwtSeries(up, Sample{1, 1}), rwtBytes(nil, rwTimeSeriesHistograms, []byte{0x08, 0x01}))),
		rwtRequest(rwtSeries([]string{"job", "x", "__name__", "up"}, Sample{1, 1})),
		rwtRequest(rwtSeries([]string{"__name__", "up", "job", ""}, Sample{1, 1})),
		valid[:len(valid)-3],
		{0x00},
	}
	seeds = append(seeds, rwtLabel("job", "node"), rwtSample(1.5, 1700000000000))
	for _, pb := range seeds {
		f.Add(pb, true)
		f.Add(snappy.Encode(nil, pb), false)
	}
	f.Add(rwtCat(protowire.AppendVarint(nil, 2_500_000_000), []byte{0, 1, 2}), false)
	f.Add(rwtFramedSnappy(f, valid), false)

	const maxDecoded = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		// The shortcuts for the usual encodings agree with the long way on any message.
		num, typ, n := rwConsumeTag(data)
		if num2, typ2, n2 := protowire.ConsumeTag(data); num != num2 || typ != typ2 || n != n2 {
			t.Fatalf("rwConsumeTag = %d, %d, %d; protowire says %d, %d, %d", num, typ, n, num2, typ2, n2)
		}
		v, n := rwConsumeBytes(data)
		if v2, n2 := protowire.ConsumeBytes(data); !bytes.Equal(v, v2) || n != n2 {
			t.Fatalf("rwConsumeBytes = %q, %d; protowire says %q, %d", v, n, v2, n2)
		}
		if l, ok := rwLabelFast(data); ok {
			if slow, err := rwDecodeLabel(data); err != nil || !bytes.Equal(l.name, slow.name) || !bytes.Equal(l.value, slow.value) {
				t.Fatalf("label shortcut %q=%q, long way %q=%q, %v", l.name, l.value, slow.name, slow.value, err)
			}
		}
		if smp, ok := rwSampleFast(data); ok {
			if slow, err := rwDecodeSample(data); err != nil || smp.TimeMs != slow.TimeMs || math.Float64bits(smp.Value) != math.Float64bits(slow.Value) {
				t.Fatalf("sample shortcut %v, long way %v, %v", smp, slow, err)
			}
		}

		body := data
		if compress {
			body = snappy.Encode(nil, data)
		}
		series, rej, err := DecodeRemoteWrite(body, maxDecoded)
		if err != nil {
			if series != nil || rej != nil {
				t.Fatalf("output with error %v", err)
			}
			return
		}
		samples := 0
		for i, s := range series {
			if s.Name == "" {
				t.Fatalf("series %d has no name", i)
			}
			if _, ok := s.Labels["__name__"]; ok {
				t.Fatalf("series %d keeps __name__ in its labels", i)
			}
			if s.Labels == nil || s.Host != s.Labels["host"] {
				t.Fatalf("series %d: labels %v, host %q", i, s.Labels, s.Host)
			}
			if len(s.Samples) == 0 {
				t.Fatalf("series %d has no samples", i)
			}
			for k, v := range s.Labels {
				if !rwValidLabelName([]byte(k)) || v == "" || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
					t.Fatalf("series %d passed label %q=%q", i, k, v)
				}
			}
			samples += len(s.Samples)
		}
		// Every sample and every rejection costs at least two encoded bytes.
		if 2*(samples+len(rej)) > maxDecoded {
			t.Fatalf("%d samples and %d rejections out of at most %d decoded bytes", samples, len(rej), maxDecoded)
		}
		for i, r := range rej {
			if r.Series < 0 || i > 0 && r.Series <= rej[i-1].Series || r.Sample != -1 || r.Reason == "" || len(r.Reason) > 300 {
				t.Fatalf("bad rejection %d: %+v", i, r)
			}
		}
	})
}

package ingest

// Prometheus remote write 1.0 (https://prometheus.io/docs/specs/remote_write_spec/) decoding.
//
// The body is a snappy block holding a prometheus.WriteRequest protobuf. The protobuf is walked by hand
// with protowire instead of generated code: only four small messages matter, and a hand-written walk
// avoids reflection, copies each label string at most once and turns every malformed byte into an error
// that names where it was found.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"unicode/utf8"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// MaxRemoteWriteDecoded bounds the decompressed size of one remote write request (32 MiB).
// Prometheus sends at most a few MiB per request with its default queue settings.
const MaxRemoteWriteDecoded = 32 << 20

// ErrRemoteWriteTooLarge is returned (wrapped) when the snappy block declares a decoded length above the
// limit. It is checked before anything is allocated, so that a small body cannot make the server
// reserve gigabytes; the HTTP layer can map it to 413 rather than 400.
var ErrRemoteWriteTooLarge = errors.New("remote write: decoded body too large")

// Field numbers of prompb's types.proto and remote.proto (remote write 1.0).
const (
	rwWriteRequestTimeseries protowire.Number = 1 // repeated TimeSeries; 2 is reserved, 3 is metadata

	rwTimeSeriesLabels     protowire.Number = 1 // repeated Label
	rwTimeSeriesSamples    protowire.Number = 2 // repeated Sample
	rwTimeSeriesHistograms protowire.Number = 4 // repeated Histogram; 3 is exemplars

	rwLabelName  protowire.Number = 1 // string
	rwLabelValue protowire.Number = 2 // string

	rwSampleValue     protowire.Number = 1 // double
	rwSampleTimestamp protowire.Number = 2 // int64, milliseconds
)

// rwSnappyStreamMagic starts every body in the snappy framing ("stream") format: a stream identifier chunk.
// Remote write uses the block format, and a block can never start this way with a valid protobuf inside
// (its first decoded byte would be 0x00, field number 0).
var rwSnappyStreamMagic = []byte("\xff\x06\x00\x00sNaPpY")

// rwSnappyMaxExpansion bounds how many decoded bytes one compressed byte of a snappy block can produce: the
// densest element is a 3-byte copy of 64 bytes (64/3 < 22). A block that declares more than this cannot
// be valid, so it is refused before its buffer is allocated.
const rwSnappyMaxExpansion = 22

// DecodeRemoteWrite decodes a Prometheus remote write 1.0 body: a snappy block (not the framed stream
// format) compressing a prometheus.WriteRequest protobuf. maxDecoded bounds the decompressed size (zero
// or less means MaxRemoteWriteDecoded); the bound is checked against the length the block declares
// before anything is allocated, so a decompression bomb costs nothing.
//
// A malformed body — bad snappy, bad protobuf, a field with the wrong wire type — fails the whole request
// with an error that starts with "snappy:" or "protobuf:" and says where (ErrRemoteWriteTooLarge when
// over the bound). A well-formed series that breaks the spec's label rules (a label set without
// __name__, labels not sorted by name, a repeated name, a name outside [a-zA-Z_][a-zA-Z0-9_]*, an empty
// value, a value that is not UTF-8 or holds a NUL byte) or that carries native histograms is refused
// alone, with one Rejection whose Series is the index of the TimeSeries in the request and Sample -1; the
// other series are still returned.
//
// The __name__ label becomes Series.Name and leaves Labels; the host label also sets Series.Host and
// stays in Labels. Values keep their exact bits, so NaN, ±Inf and the Prometheus stale marker pass
// through unchanged. A series without samples and without histograms yields nothing, not even a
// rejection, whatever its labels: there is nothing to store. Exemplars, metadata and unknown fields are
// skipped.
//
// Returned names, labels and hosts are copies: they alias neither body nor the decode buffer, which is
// reused by later calls. Equal short strings share one copy, within a request and across requests.
func DecodeRemoteWrite(body []byte, maxDecoded int) ([]Series, []Rejection, error) {
	if maxDecoded <= 0 {
		maxDecoded = MaxRemoteWriteDecoded
	}
	if bytes.HasPrefix(body, rwSnappyStreamMagic) {
		return nil, nil, errors.New("snappy: body uses the framed stream format; remote write needs the block format")
	}
	declared, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, nil, fmt.Errorf("snappy: read block length: %w", err)
	}
	if declared > maxDecoded {
		return nil, nil, fmt.Errorf("snappy: block declares %d decoded bytes, limit is %d: %w",
			declared, maxDecoded, ErrRemoteWriteTooLarge)
	}
	// DecodedLen succeeded, so body holds at least one header byte; the bound below is generous by that.
	if declared > rwSnappyMaxExpansion*len(body) {
		return nil, nil, fmt.Errorf("snappy: block declares %d decoded bytes, more than %d compressed bytes can hold",
			declared, len(body))
	}

	d := rwDecoderPool.Get().(*rwDecoder)
	defer d.release()

	buf, err := snappy.Decode(d.buf[:cap(d.buf)], body)
	if err != nil {
		return nil, nil, fmt.Errorf("snappy: %w", err)
	}
	if cap(buf) > cap(d.buf) {
		d.buf = buf
	}
	return d.decodeWriteRequest(buf)
}

// rwDecoder holds what one call needs besides its output. It is pooled so that the decode buffer and
// the scratch slices are reused across requests; nothing handed to the caller points into it.
type rwDecoder struct {
	buf     []byte                // snappy output
	samples []Sample              // the samples of the series being decoded
	prev    []rwPrevLabel         // the labels of the last series returned, by position
	strs    [rwInternSlots]string // label names and values seen lately, by hash; see intern
	seed    maphash.Seed          // for strs
}

// rwLabel is one label still pointing into the decode buffer.
type rwLabel struct {
	name, value []byte
}

// rwPrevLabel is a label already copied out, kept to be shared by the next series: consecutive series
// mostly repeat their label names and many of their values, and comparing with the previous one is
// cheaper than hashing into strs.
type rwPrevLabel struct {
	name, value string
}

// Limits on what a pooled decoder keeps, so that one huge request does not pin memory for ever.
const (
	rwPoolMaxBuf     = 4 << 20
	rwPoolMaxSamples = 1 << 14
)

// rwMaxChunk bounds, in samples, the arrays that series' samples are cut from.
const rwMaxChunk = 1 << 16

var rwDecoderPool = sync.Pool{New: func() any {
	return &rwDecoder{seed: maphash.MakeSeed()}
}}

func (d *rwDecoder) release() {
	if cap(d.buf) > rwPoolMaxBuf {
		d.buf = nil
	}
	if cap(d.samples) > rwPoolMaxSamples {
		d.samples = nil
	}
	clear(d.prev) // drop references to the caller's strings
	d.prev = d.prev[:0]
	rwDecoderPool.Put(d)
}

// decodeWriteRequest walks a WriteRequest. Series' samples are cut from shared arrays sized from the
// series seen so far, so that a request costs a few sample allocations rather than one per series.
func (d *rwDecoder) decodeWriteRequest(b []byte) ([]Series, []Rejection, error) {
	total, err := rwCountSeries(b)
	if err != nil {
		return nil, nil, err
	}
	var (
		out        []Series // allocated for the remaining series when the first is accepted
		rejections []Rejection
		arena      []Sample
		samples    int // decoded so far, for sizing the next arena
	)
	for idx := 0; len(b) > 0; {
		num, typ, n := rwConsumeTag(b) // rwCountSeries checked every tag and length
		b = b[n:]
		if num != rwWriteRequestTimeseries {
			b = b[protowire.ConsumeFieldValue(num, typ, b):]
			continue
		}
		ts, n := rwConsumeBytes(b)
		b = b[n:]
		s, reason, err := d.decodeTimeSeries(ts)
		if err != nil {
			return nil, nil, fmt.Errorf("protobuf: timeseries %d: %w", idx, err)
		}
		idx++
		if reason != "" {
			if len(rejections) == cap(rejections) {
				// Double, but never past the series left: a request of many tiny refused series should
				// not cost append's slower growth on large slices several times over.
				grown := make([]Rejection, len(rejections), min(max(2*cap(rejections), 8), len(rejections)+total-idx+1))
				copy(grown, rejections)
				rejections = grown
			}
			rejections = append(rejections, Rejection{Series: idx - 1, Sample: -1, Reason: reason})
			continue
		}
		n = len(d.samples)
		if n == 0 {
			continue
		}
		samples += n
		if cap(arena)-len(arena) < n {
			// Guess what the remaining series need from the average so far.
			guess := min((total-idx+1)*((samples+idx-1)/idx), rwMaxChunk)
			arena = make([]Sample, 0, max(n, guess))
		}
		start := len(arena)
		arena = append(arena, d.samples...)
		s.Samples = arena[start:len(arena):len(arena)]
		if out == nil {
			out = make([]Series, 0, total-idx+1)
		}
		out = append(out, s)
	}
	return out, rejections, nil
}

// rwCountSeries checks the framing of a WriteRequest's fields and counts its series. It does not look
// inside them.
func rwCountSeries(b []byte) (int, error) {
	series := 0
	for len(b) > 0 {
		num, typ, n := rwConsumeTag(b)
		if n < 0 {
			return 0, fmt.Errorf("protobuf: write request after %d timeseries: %w", series, protowire.ParseError(n))
		}
		b = b[n:]
		if num == rwWriteRequestTimeseries && typ != protowire.BytesType {
			return 0, fmt.Errorf("protobuf: timeseries %d: %w", series, rwWireTypeError(typ))
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			if num == rwWriteRequestTimeseries {
				return 0, fmt.Errorf("protobuf: timeseries %d: %w", series, protowire.ParseError(n))
			}
			return 0, fmt.Errorf("protobuf: write request field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if num == rwWriteRequestTimeseries {
			series++
		}
	}
	return series, nil
}

// decodeTimeSeries decodes one TimeSeries into s, leaving its samples in d.samples. A non-empty reason
// refuses the series; an error means the protobuf itself is malformed. The whole message is read even
// after a reason is found, so that a malformed request is never half accepted.
func (d *rwDecoder) decodeTimeSeries(b []byte) (s Series, reason string, err error) {
	// The labels point into the decode buffer; kept on the stack, storing them costs no write barrier.
	var labelsArray [16]rwLabel
	labels := labelsArray[:0]
	d.samples = d.samples[:0]
	var histograms bool
	for len(b) > 0 {
		num, typ, n := rwConsumeTag(b)
		if n < 0 {
			return s, "", protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == rwTimeSeriesLabels && typ == protowire.BytesType:
			m, n := rwConsumeBytes(b)
			if n < 0 {
				return s, "", fmt.Errorf("label %d: %w", len(labels), protowire.ParseError(n))
			}
			b = b[n:]
			l, ok := rwLabelFast(m)
			if !ok {
				if l, err = rwDecodeLabel(m); err != nil {
					return s, "", fmt.Errorf("label %d: %w", len(labels), err)
				}
			}
			labels = append(labels, l)
		case num == rwTimeSeriesSamples && typ == protowire.BytesType:
			m, n := rwConsumeBytes(b)
			if n < 0 {
				return s, "", fmt.Errorf("sample %d: %w", len(d.samples), protowire.ParseError(n))
			}
			b = b[n:]
			smp, ok := rwSampleFast(m)
			if !ok {
				if smp, err = rwDecodeSample(m); err != nil {
					return s, "", fmt.Errorf("sample %d: %w", len(d.samples), err)
				}
			}
			d.samples = append(d.samples, smp)
		case num == rwTimeSeriesLabels:
			return s, "", fmt.Errorf("label %d: %w", len(labels), rwWireTypeError(typ))
		case num == rwTimeSeriesSamples:
			return s, "", fmt.Errorf("sample %d: %w", len(d.samples), rwWireTypeError(typ))
		case num == rwTimeSeriesHistograms && typ != protowire.BytesType:
			return s, "", fmt.Errorf("histogram: %w", rwWireTypeError(typ))
		default: // histograms (refused below), exemplars and unknown fields
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s, "", fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			histograms = histograms || num == rwTimeSeriesHistograms
		}
	}

	if len(d.samples) == 0 && !histograms {
		return s, "", nil // nothing to store, nothing lost: the caller drops the series
	}
	if reason := rwCheckLabels(labels); reason != "" {
		return s, reason, nil
	}
	if histograms {
		return s, "native histograms are not supported; send float samples", nil
	}

	s.Labels = make(map[string]string, len(labels)-1)
	for i, l := range labels {
		if i == len(d.prev) {
			d.prev = append(d.prev, rwPrevLabel{})
		}
		p := &d.prev[i]
		if p.name != string(l.name) {
			p.name = d.intern(l.name)
		}
		if p.value != string(l.value) {
			p.value = d.intern(l.value)
		}
		switch p.name {
		case "__name__":
			s.Name = p.value
			continue
		case "host":
			s.Host = p.value
		}
		s.Labels[p.name] = p.value
	}
	return s, "", nil
}

// rwInternSlots is the size of the intern cache: room for the distinct names and common values of a
// few requests' worth of series.
const rwInternSlots = 1024

// rwInternMaxLen is the longest string the intern cache keeps, so that it never pins a large value.
const rwInternMaxLen = 128

// intern returns b as a string, sharing one copy for equal names and values: a request's series repeat
// job, instance and host many times, and consecutive requests from one sender repeat the same series.
// It is a direct-mapped cache of fixed size kept with the pooled decoder, not a map: a lookup is one
// hash and one comparison, and a miss replaces the slot's string. Sharing strings across requests, and
// so across tenants, is harmless: strings are immutable.
func (d *rwDecoder) intern(b []byte) string {
	if len(b) > rwInternMaxLen {
		return string(b)
	}
	slot := &d.strs[maphash.Bytes(d.seed, b)%rwInternSlots]
	if *slot != string(b) {
		*slot = string(b)
	}
	return *slot
}

// rwCheckLabels applies the remote write 1.0 label rules and returns why the set is refused, or "".
func rwCheckLabels(labels []rwLabel) string {
	if len(labels) == 0 {
		return "empty label set"
	}
	hasName := false
	for i, l := range labels {
		if !rwValidLabelName(l.name) {
			return fmt.Sprintf("label %s: invalid name, want [a-zA-Z_][a-zA-Z0-9_]*", rwQuote(l.name))
		}
		if i > 0 {
			if prev := labels[i-1].name; string(prev) >= string(l.name) {
				if string(prev) == string(l.name) {
					return fmt.Sprintf("label %s: repeated", rwQuote(l.name))
				}
				return fmt.Sprintf("label %s: not sorted, comes after %s", rwQuote(l.name), rwQuote(prev))
			}
		}
		if why := rwCheckLabelValue(l.value); why != "" {
			return fmt.Sprintf("label %s: %s", rwQuote(l.name), why)
		}
		if string(l.name) == "__name__" {
			hasName = true
		}
	}
	if !hasName {
		return "missing __name__ label"
	}
	return ""
}

// rwCheckLabelValue returns why a label value is refused, or "". Values must be non-empty (RW1: an empty
// value means the label is absent, and senders must not send one) and UTF-8 (RW1); NUL bytes are refused
// too, as PostgreSQL text cannot hold them and one such value would fail a whole group commit.
func rwCheckLabelValue(v []byte) string {
	if len(v) == 0 {
		return "empty value; omit the label instead"
	}
	// Eight bytes at a time while they are ASCII without NUL, which most values are throughout.
	const lows, highs = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		w := binary.LittleEndian.Uint64(v)
		if w&highs != 0 || (w-lows)&^w&highs != 0 {
			break
		}
		v = v[8:]
	}
	for i, c := range v {
		if c == 0 {
			return "value contains a NUL byte"
		}
		if c >= utf8.RuneSelf {
			switch {
			case !utf8.Valid(v[i:]):
				return "value is not valid UTF-8"
			case bytes.IndexByte(v[i:], 0) >= 0:
				return "value contains a NUL byte"
			}
			break
		}
	}
	return ""
}

// rwNameChars classifies bytes for label names: 1 may start a name, 2 may follow.
var rwNameChars = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			t[c] = 1 | 2
		case c >= '0' && c <= '9':
			t[c] = 2
		}
	}
	return t
}()

// rwValidLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]*.
func rwValidLabelName(name []byte) bool {
	if len(name) == 0 || rwNameChars[name[0]]&1 == 0 {
		return false
	}
	for _, c := range name[1:] {
		if rwNameChars[c]&2 == 0 {
			return false
		}
	}
	return true
}

// rwQuote quotes b for a rejection reason, cut to a length that keeps responses small whatever
// the sender put in its labels.
func rwQuote(b []byte) string {
	const maxLen = 64
	if len(b) > maxLen {
		return fmt.Sprintf("%q…", b[:maxLen])
	}
	return fmt.Sprintf("%q", b)
}

// rwLabelFast decodes the Label encoding every sender produces — name, then value, each shorter than
// 128 bytes — and reports false for anything else, which rwDecodeLabel then reads the long way.
func rwLabelFast(b []byte) (rwLabel, bool) {
	const nameTag, valueTag = byte(rwLabelName)<<3 | byte(protowire.BytesType), byte(rwLabelValue)<<3 | byte(protowire.BytesType)
	if len(b) >= 4 && b[0] == nameTag && b[1] < 0x80 {
		n := 2 + int(b[1])
		if n+2 <= len(b) && b[n] == valueTag && b[n+1] < 0x80 && int(b[n+1]) == len(b)-n-2 {
			return rwLabel{name: b[2:n], value: b[n+2:]}, true
		}
	}
	return rwLabel{}, false
}

// rwDecodeLabel decodes a Label message. A missing field is empty, as proto3 has it.
func rwDecodeLabel(b []byte) (rwLabel, error) {
	var l rwLabel
	for len(b) > 0 {
		num, typ, n := rwConsumeTag(b)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case rwLabelName, rwLabelValue:
			if typ != protowire.BytesType {
				return l, fmt.Errorf("field %d: %w", num, rwWireTypeError(typ))
			}
			v, n := rwConsumeBytes(b)
			if n < 0 {
				return l, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			if num == rwLabelName {
				l.name = v
			} else {
				l.value = v
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return l, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return l, nil
}

// rwSampleFast decodes the usual Sample encoding — value, then timestamp — and reports false for
// anything else, which rwDecodeSample then reads the long way.
func rwSampleFast(b []byte) (Sample, bool) {
	const valueTag, timestampTag = byte(rwSampleValue)<<3 | byte(protowire.Fixed64Type), byte(rwSampleTimestamp)<<3 | byte(protowire.VarintType)
	if len(b) >= 11 && b[0] == valueTag && b[9] == timestampTag {
		if ts, n := protowire.ConsumeVarint(b[10:]); n == len(b)-10 {
			return Sample{TimeMs: int64(ts), Value: math.Float64frombits(binary.LittleEndian.Uint64(b[1:9]))}, true
		}
	}
	return Sample{}, false
}

// rwDecodeSample decodes a Sample message, keeping the value's exact bits (stale markers are NaNs with a
// payload). A missing field is zero, as proto3 has it.
func rwDecodeSample(b []byte) (Sample, error) {
	var s Sample
	for len(b) > 0 {
		num, typ, n := rwConsumeTag(b)
		if n < 0 {
			return s, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case rwSampleValue:
			if typ != protowire.Fixed64Type {
				return s, fmt.Errorf("value: %w", rwWireTypeError(typ))
			}
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return s, fmt.Errorf("value: %w", protowire.ParseError(n))
			}
			b = b[n:]
			s.Value = math.Float64frombits(v)
		case rwSampleTimestamp:
			if typ != protowire.VarintType {
				return s, fmt.Errorf("timestamp: %w", rwWireTypeError(typ))
			}
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return s, fmt.Errorf("timestamp: %w", protowire.ParseError(n))
			}
			b = b[n:]
			s.TimeMs = int64(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return s, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return s, nil
}

func rwWireTypeError(typ protowire.Type) error {
	return fmt.Errorf("unexpected wire type %d", typ)
}

// rwConsumeTag is protowire.ConsumeTag with an inlined path for one-byte tags, which are all that remote
// write uses: the decoder spends most of its time reading tags and lengths.
func rwConsumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0]-1<<3 < 0x80-1<<3 { // a one-byte tag with a field number above 0
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return rwConsumeTagSlow(b)
}

//go:noinline
func rwConsumeTagSlow(b []byte) (protowire.Number, protowire.Type, int) {
	return protowire.ConsumeTag(b)
}

// rwConsumeBytes is protowire.ConsumeBytes with an inlined path for lengths below 128.
func rwConsumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) {
		return b[1 : 1+b[0]], 1 + int(b[0])
	}
	return rwConsumeBytesSlow(b)
}

//go:noinline
func rwConsumeBytesSlow(b []byte) ([]byte, int) {
	return protowire.ConsumeBytes(b)
}

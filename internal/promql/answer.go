package promql

import (
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	prom "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// encodeValue writes a query's value as the data object of the Prometheus HTTP API's answer, written
// directly (a day of 1,000 series at a minute's step is 1.44 million points): {"resultType":"matrix",
// "result":[{"metric":{…},"values":[[1700000000.5,"1.25"],…]}]}, and vector, scalar and string alike.
// Times are seconds with their milliseconds; values are strings, NaN and ±Inf as Prometheus writes them.
func encodeValue(v parser.Value) []byte {
	switch v := v.(type) {
	case prom.Matrix:
		n := 0
		for _, s := range v {
			n += len(s.Floats)
		}
		b := make([]byte, 0, 64+len(v)*160+n*32)
		b = append(b, `{"resultType":"matrix","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabels(b, s.Metric)
			b = append(b, `,"values":[`...)
			for k, p := range s.Floats {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendPoint(b, p.T, p.F)
			}
			b = append(b, "]}"...)
		}
		return append(b, "]}"...)
	case prom.Vector:
		b := make([]byte, 0, 64+len(v)*200)
		b = append(b, `{"resultType":"vector","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabels(b, s.Metric)
			b = append(b, `,"value":`...)
			b = appendPoint(b, s.T, s.F)
			b = append(b, '}')
		}
		return append(b, "]}"...)
	case prom.Scalar:
		b := append([]byte(`{"resultType":"scalar","result":`), appendPoint(nil, v.T, v.V)...)
		return append(b, '}')
	case prom.String:
		b := append([]byte(`{"resultType":"string","result":[`), appendTime(nil, v.T)...)
		b = append(b, ',')
		b = appendJSONString(b, v.V)
		return append(b, "]}"...)
	}
	return []byte(`{"resultType":"vector","result":[]}`)
}

// appendPoint writes [time, "value"].
func appendPoint(b []byte, t int64, f float64) []byte {
	b = append(b, '[')
	b = appendTime(b, t)
	b = append(b, `,"`...)
	b = appendFloat(b, f)
	return append(b, `"]`...)
}

// appendTime writes milliseconds as seconds with up to three decimals, as Prometheus does.
func appendTime(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

// appendFloat writes a value as Prometheus does: the shortest decimal, or NaN, +Inf, -Inf.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendLabels writes a label set as a JSON object, in label order.
func appendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	})
	return append(b, '}')
}

// appendJSONString writes s as a JSON string. Go's %q escapes differ from JSON's (\x, \U), so control
// characters are written as \u00XX and the rest of UTF-8 as it is; bytes that are not UTF-8 become
// U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = append(b, string(r)...)
		}
	}
	return append(b, '"')
}

package ingest

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lpNow is the clock of the line protocol tests: lines without a timestamp get lpNow.UnixMilli().
var lpNow = time.UnixMilli(1_764_300_000_123)

// lpLabels builds a label set from key, value pairs; never nil, as the parser's are not.
func lpLabels(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// lpSeries builds an expected series; the host comes from the "host" label, as the parser sets it.
func lpSeries(name string, lbls map[string]string, samples ...Sample) Series {
	return Series{Name: name, Labels: lbls, Host: lbls["host"], Samples: samples}
}

func TestParseLineProtocol(t *testing.T) {
	t.Parallel()
	now := lpNow.UnixMilli()
	manyFields := func(repeat string) string {
		var b strings.Builder
		b.WriteString("m ")
		for i := range 20 {
			fmt.Fprintf(&b, "f%d=1,", i)
		}
		b.WriteString(repeat + "=2 0")
		return b.String()
	}
	manyTags := func() string {
		var b strings.Builder
		b.WriteString("m")
		for i := range 20 {
			fmt.Fprintf(&b, ",t%d=x", i)
		}
		b.WriteString(",t7=y v=1 0")
		return b.String()
	}
	manyShortFields := func(n int) string {
		fields := make([]string, n)
		for i := range fields {
			fields[i] = fmt.Sprintf("%x=1", i)
		}
		return strings.Join(fields, ",")
	}
	lpManySeries := func(meas string, n int) []Series {
		series := make([]Series, n)
		for i := range series {
			series[i] = lpSeries(fmt.Sprintf("%s.%x", meas, i), lpLabels(), Sample{now, 1})
		}
		return series
	}
	long := strings.Repeat("a", 1019) // with ".abcd", exactly 1024
	accents := strings.Repeat("é", 600)

	tests := []struct {
		name      string
		body      string
		precision string // "" is nanoseconds
		want      []Series
		rejected  []Rejection
	}{
		{
			name: "telegraf line",
			body: "cpu,cpu=cpu0,host=web-1 usage_idle=98.2,usage_user=1.1 1764300000000000000\n",
			want: []Series{
				lpSeries("cpu.usage_idle", lpLabels("cpu", "cpu0", "host", "web-1"), Sample{1_764_300_000_000, 98.2}),
				lpSeries("cpu.usage_user", lpLabels("cpu", "cpu0", "host", "web-1"), Sample{1_764_300_000_000, 1.1}),
			},
		},
		{
			name: "a field named value is the measurement itself",
			body: "temp,room=hall value=21.5 1000000000",
			want: []Series{lpSeries("temp", lpLabels("room", "hall"), Sample{1000, 21.5})},
		},
		{
			name: "no tags and no timestamp",
			body: "load value=1",
			want: []Series{lpSeries("load", lpLabels(), Sample{now, 1})},
		},
		{
			name: "host tag sets Host and stays a label; hostname does not",
			body: "cpu,host=web-1 v=1 0\ncpu,hostname=web-2 v=2 0",
			want: []Series{
				{Name: "cpu.v", Labels: lpLabels("host", "web-1"), Host: "web-1", Samples: []Sample{{0, 1}}},
				{Name: "cpu.v", Labels: lpLabels("hostname", "web-2"), Host: "", Samples: []Sample{{0, 2}}},
			},
		},
		{
			name: "numbers",
			body: "m a=1,b=1.5,c=-1e3,d=+2,e=.5,f=1.,g=12i,h=-12i,k=12u,l=0x1p-2,n=1E4,o=0.1,p=-0 0",
			want: []Series{
				lpSeries("m.a", lpLabels(), Sample{0, 1}),
				lpSeries("m.b", lpLabels(), Sample{0, 1.5}),
				lpSeries("m.c", lpLabels(), Sample{0, -1000}),
				lpSeries("m.d", lpLabels(), Sample{0, 2}),
				lpSeries("m.e", lpLabels(), Sample{0, 0.5}),
				lpSeries("m.f", lpLabels(), Sample{0, 1}),
				lpSeries("m.g", lpLabels(), Sample{0, 12}),
				lpSeries("m.h", lpLabels(), Sample{0, -12}),
				lpSeries("m.k", lpLabels(), Sample{0, 12}),
				lpSeries("m.l", lpLabels(), Sample{0, 0.25}),
				lpSeries("m.n", lpLabels(), Sample{0, 10000}),
				lpSeries("m.o", lpLabels(), Sample{0, 0.1}),
				lpSeries("m.p", lpLabels(), Sample{0, math.Copysign(0, -1)}),
			},
		},
		{
			name: "booleans",
			body: "m t1=t,t2=T,t3=true,t4=True,t5=TRUE,f1=f,f2=F,f3=false,f4=False,f5=FALSE 0",
			want: []Series{
				lpSeries("m.t1", lpLabels(), Sample{0, 1}),
				lpSeries("m.t2", lpLabels(), Sample{0, 1}),
				lpSeries("m.t3", lpLabels(), Sample{0, 1}),
				lpSeries("m.t4", lpLabels(), Sample{0, 1}),
				lpSeries("m.t5", lpLabels(), Sample{0, 1}),
				lpSeries("m.f1", lpLabels(), Sample{0, 0}),
				lpSeries("m.f2", lpLabels(), Sample{0, 0}),
				lpSeries("m.f3", lpLabels(), Sample{0, 0}),
				lpSeries("m.f4", lpLabels(), Sample{0, 0}),
				lpSeries("m.f5", lpLabels(), Sample{0, 0}),
			},
		},
		{
			name: "integer ranges",
			body: strings.Join([]string{
				"m value=9223372036854775807i 0",
				"m value=9223372036854775808i 0",
				"m value=-9223372036854775808i 0",
				"m value=-9223372036854775809i 0",
				"m value=18446744073709551615u 0",
				"m value=18446744073709551616u 0",
				"m value=-1u 0",
				"m value=1.5i 0",
				"m value=i 0",
				"m value=TRUEi 0",
			}, "\n"),
			want: []Series{lpSeries("m", lpLabels(),
				Sample{0, 9223372036854775807}, Sample{0, -9223372036854775808}, Sample{0, 18446744073709551615})},
			rejected: []Rejection{
				{1, 0, `line 2 field "value": out of range integer "9223372036854775808i"`},
				{3, 0, `line 4 field "value": out of range integer "-9223372036854775809i"`},
				{5, 0, `line 6 field "value": out of range unsigned integer "18446744073709551616u"`},
				{6, 0, `line 7 field "value": invalid unsigned integer "-1u"`},
				{7, 0, `line 8 field "value": invalid integer "1.5i"`},
				{8, 0, `line 9 field "value": invalid integer "i"`},
				{9, 0, `line 10 field "value": invalid integer "TRUEi"`},
			},
		},
		{
			name: "NaN, infinity and malformed numbers are refused alone",
			body: "m a=NaN,b=inf,c=-Infinity,d=1e400,e=2,f=1.1.1,g=1a,h=abc,i=- 0",
			want: []Series{lpSeries("m.e", lpLabels(), Sample{0, 2})},
			rejected: []Rejection{
				{0, 0, `line 1 field "a": NaN and infinity are not allowed in line protocol`},
				{0, 1, `line 1 field "b": NaN and infinity are not allowed in line protocol`},
				{0, 2, `line 1 field "c": NaN and infinity are not allowed in line protocol`},
				{0, 3, `line 1 field "d": out of range number "1e400"`},
				{0, 5, `line 1 field "f": invalid value "1.1.1"`},
				{0, 6, `line 1 field "g": invalid value "1a"`},
				{0, 7, `line 1 field "h": invalid value "abc"`},
				{0, 8, `line 1 field "i": invalid value "-"`},
			},
		},
		{
			name: "string fields are refused, the line's other fields kept",
			body: `syslog,host=h1 msg="disk \"sda\" full, 90% = bad",severity=3i,note="a=b c" 0`,
			want: []Series{lpSeries("syslog.severity", lpLabels("host", "h1"), Sample{0, 3})},
			rejected: []Rejection{
				{0, 0, `line 1 field "msg": string fields are not stored`},
				{0, 2, `line 1 field "note": string fields are not stored`},
			},
		},
		{
			name: "string escapes do not end the value early",
			body: "m s=\"ends in a backslash\\\\\",v=1 0\nm s=\"quote \\\" inside\",v=2 1000000\nm s=\"\\n and \\t stay\",v=3 2000000",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{0, 1}, Sample{1, 2}, Sample{2, 3})},
			rejected: []Rejection{
				{0, 0, `line 1 field "s": string fields are not stored`},
				{1, 0, `line 2 field "s": string fields are not stored`},
				{2, 0, `line 3 field "s": string fields are not stored`},
			},
		},
		{
			name: "a newline inside a string value continues the line",
			body: "m s=\"two\nlines\",v=1 5000000\nm v=2 6000000\nm v=oops 0",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{5, 1}, Sample{6, 2})},
			rejected: []Rejection{
				{0, 0, `line 1 field "s": string fields are not stored`},
				{3, 0, `line 4 field "v": invalid value "oops"`},
			},
		},
		{
			name: "an unterminated string refuses its line and parsing resumes on the next one",
			body: "m v=1 0\nm s=\"open,v=2 0\nm v=3 0",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{0, 1}, Sample{0, 3})},
			rejected: []Rejection{
				{1, -1, `line 2: unterminated string field value`},
			},
		},
		{
			name:     "an unterminated string at the end of the body",
			body:     `m s="abc\`,
			rejected: []Rejection{{0, -1, `line 1: unterminated string field value`}},
		},
		{
			name: "a refused line is still read to its true end",
			body: "cpu,t= s=\"a\nb\" 0\ncpu v=1 0",
			want: []Series{lpSeries("cpu.v", lpLabels(), Sample{0, 1})},
			rejected: []Rejection{
				{0, -1, `line 1: tag "t" has an empty value`},
			},
		},
		{
			name: "comments, blank lines, CRLF and leading blanks",
			body: "# comment\r\n\r\n   \r\ncpu v=1 1000000\r\n  # indented comment\n\tcpu v=2 2000000\r\ncpu v=x 0\r\n",
			want: []Series{lpSeries("cpu.v", lpLabels(), Sample{1, 1}, Sample{2, 2})},
			rejected: []Rejection{
				{6, 0, `line 7 field "v": invalid value "x"`},
			},
		},
		{
			name: "extra spaces between sections and at the end",
			body: "cpu,host=a   v=1   1000000   \ncpu,host=a v=2   ",
			want: []Series{lpSeries("cpu.v", lpLabels("host", "a"), Sample{1, 1}, Sample{now, 2})},
		},
		{
			name: "identical series merge in order of first appearance, whatever the tag order",
			body: "cpu,b=2,a=1 v=1 1000000\nmem v=5 1000000\ncpu,a=1,b=2 v=2 2000000\ncpu,a=1,b=3 v=3 3000000\ncpu,a=1,b=2 v=4 4000000",
			want: []Series{
				lpSeries("cpu.v", lpLabels("a", "1", "b", "2"), Sample{1, 1}, Sample{2, 2}, Sample{4, 4}),
				lpSeries("mem.v", lpLabels(), Sample{1, 5}),
				lpSeries("cpu.v", lpLabels("a", "1", "b", "3"), Sample{3, 3}),
			},
		},
		{
			name: "series are identified by their name, not by how the line split it",
			body: "cpu a.b=1 0\ncpu.a b=2 1000000\ncpu value=3 0\ncpu value=4 1000000",
			want: []Series{
				lpSeries("cpu.a.b", lpLabels(), Sample{0, 1}, Sample{1, 2}),
				lpSeries("cpu", lpLabels(), Sample{0, 3}, Sample{1, 4}),
			},
		},
		{
			name: "escapes in the measurement, tag keys, tag values and field keys",
			body: strings.Join([]string{
				`cpu\,main,region\ zone=us\,east\ 1 value\ ms=1 0`,
				`cpu\ load,eq\=key=a\=b f\=k=2,f\,k=3 0`,
				`cpu\=x v=4 0`,
				`cpu=x v=5 0`,
				`cpu,path=C:\temp\new v=6 0`,
				`cpu,t=a\\ b v=7 0`,
				`cpu \a=8 0`,
				`cpu,"q"="v" "f"=9 0`,
			}, "\n"),
			want: []Series{
				lpSeries("cpu,main.value ms", lpLabels("region zone", "us,east 1"), Sample{0, 1}),
				lpSeries("cpu load.f=k", lpLabels("eq=key", "a=b"), Sample{0, 2}),
				lpSeries("cpu load.f,k", lpLabels("eq=key", "a=b"), Sample{0, 3}),
				lpSeries(`cpu\=x.v`, lpLabels(), Sample{0, 4}),
				lpSeries("cpu=x.v", lpLabels(), Sample{0, 5}),
				lpSeries("cpu.v", lpLabels("path", `C:\temp\new`), Sample{0, 6}),
				lpSeries("cpu.v", lpLabels("t", `a\ b`), Sample{0, 7}),
				lpSeries(`cpu.\a`, lpLabels(), Sample{0, 8}),
				lpSeries(`cpu."f"`, lpLabels(`"q"`, `"v"`), Sample{0, 9}),
			},
		},
		{
			name: "trailing backslashes",
			body: strings.Join([]string{
				`cpu\ v=1`,
				`cpu v=1 0\`,
				`cpu v=1\`,
				`cpu,t=x\`,
				`cpu a\=1`,
				`cpu\`,
				`cpu,dir=C:\\temp v=2 0`,
				`cpu,dir=C:\ v=3 0`,
			}, "\n"),
			want: []Series{lpSeries("cpu.v", lpLabels("dir", `C:\\temp`), Sample{0, 2})},
			rejected: []Rejection{
				{0, -1, `line 1: missing fields`},
				{1, -1, `line 2: invalid timestamp "0\\"`},
				{2, 0, `line 3 field "v": invalid value "1\\"`},
				{3, -1, `line 4: missing fields`},
				{4, -1, `line 5: field "a=1" has no '='`},
				{5, -1, `line 6: missing fields`},
				{7, -1, `line 8: tag "dir" has an unescaped '=' in its value`},
			},
		},
		{
			name: "malformed lines are refused whole and the rest is decoded",
			body: strings.Join([]string{
				"cpu",
				"cpu,host=a",
				"cpu ",
				",host=a v=1",
				"cpu v",
				"cpu =1",
				"cpu v=",
				"cpu,host=a,host=b v=1",
				"cpu v=1,v=2",
				"cpu,host v=1",
				"cpu,host= v=1",
				"cpu,=a v=1",
				"cpu,t=a=b v=1",
				"cpu v=1,",
				"cpu v=1 12x",
				"cpu v=1 1 2",
				`cpu v="x"y`,
				"cpu, v=1",
				"cpu v=1 9223372036854775808",
				manyFields("f3"),
				manyTags(),
				"cpu ok=1 0",
			}, "\n"),
			want: []Series{lpSeries("cpu.ok", lpLabels(), Sample{0, 1})},
			rejected: []Rejection{
				{0, -1, `line 1: missing fields`},
				{1, -1, `line 2: missing fields`},
				{2, -1, `line 3: missing fields`},
				{3, -1, `line 4: missing measurement`},
				{4, -1, `line 5: field "v" has no '='`},
				{5, -1, `line 6: empty field key`},
				{6, -1, `line 7: field "v" has no value`},
				{7, -1, `line 8: tag "host" is repeated`},
				{8, -1, `line 9: field "v" is repeated`},
				{9, -1, `line 10: tag "host" has no '='`},
				{10, -1, `line 11: tag "host" has an empty value`},
				{11, -1, `line 12: empty tag key`},
				{12, -1, `line 13: tag "t" has an unescaped '=' in its value`},
				{13, -1, `line 14: empty field key`},
				{14, -1, `line 15: invalid timestamp "12x"`},
				{15, -1, `line 16: unexpected text after the timestamp`},
				{16, -1, `line 17: field "v" has text after its closing quote`},
				{17, -1, `line 18: empty tag key`},
				{18, -1, `line 19: invalid timestamp "9223372036854775808"`},
				{19, -1, `line 20: field "f3" is repeated`},
				{20, -1, `line 21: tag "t7" is repeated`},
			},
		},
		{
			name: "names and labels must be UTF-8 without NUL",
			body: "cpu,t=\xff v=1 0\ncpu v\x00=1,w=2 0\ntempérature,pièce=salon valeur=19.5 0",
			want: []Series{
				lpSeries("cpu.w", lpLabels(), Sample{0, 2}),
				lpSeries("température.valeur", lpLabels("pièce", "salon"), Sample{0, 19.5}),
			},
			rejected: []Rejection{
				{0, -1, `line 1: measurement or tags are not valid UTF-8 or hold a NUL byte`},
				{1, 0, `line 2 field "v\x00": field key is not valid UTF-8 or holds a NUL byte`},
			},
		},
		{
			name: "series names are at most 1024 characters",
			body: long + " value=1,abcd=2,abcdef=3 0\n" + accents + " x=4 0",
			want: []Series{
				lpSeries(long, lpLabels(), Sample{0, 1}),
				lpSeries(long+".abcd", lpLabels(), Sample{0, 2}),
				lpSeries(accents+".x", lpLabels(), Sample{0, 4}),
			},
			rejected: []Rejection{
				{0, 2, `line 1 field "abcdef": series name is longer than 1024 characters`},
			},
		},
		{
			name: "a long measurement with many fields is refused: its names would dwarf the body",
			body: strings.Repeat("m", 1000) + " " + manyShortFields(100) + "\n" + strings.Repeat("m", 64) + " " + manyShortFields(300),
			want: lpManySeries(strings.Repeat("m", 64), 300),
			rejected: []Rejection{
				{0, -1, `line 1: the measurement is too long for 100 fields (their names would take 100284 bytes)`},
			},
		},
		{
			name: "empty body",
			body: "",
		},
		{
			name: "only comments and blank lines",
			body: "\n\n# nothing\n\r\n",
		},
		// Precisions: every unit and its aliases, with rounding toward negative infinity.
		{name: "precision n", precision: "n", body: "m v=1 1764300000123456789",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_123, 1})}},
		{name: "precision empty is ns", precision: "", body: "m v=1 1764300000123999999",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_123, 1})}},
		{name: "precision us", precision: "us", body: "m v=1 1764300000123456",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_123, 1})}},
		{name: "precision u", precision: "u", body: "m v=1 1764300000123999",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_123, 1})}},
		{name: "precision ms", precision: "ms", body: "m v=1 1764300000123",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_123, 1})}},
		{name: "precision s", precision: "s", body: "m v=1 1764300000",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_000, 1})}},
		{name: "precision m", precision: "m", body: "m v=1 29405000",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_300_000_000, 1})}},
		{name: "precision h", precision: "h", body: "m v=1 490083",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{1_764_298_800_000, 1})}},
		{name: "negative ns round down", body: "m v=1 -1\nm v=2 -1000000\nm v=3 -1000001\nm v=4 -1764300000123456789",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{-1, 1}, Sample{-1, 2}, Sample{-2, 3}, Sample{-1_764_300_000_124, 4})}},
		{name: "negative us round down", precision: "us", body: "m v=1 -1500",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{-2, 1})}},
		{name: "negative ms", precision: "ms", body: "m v=1 -7",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{-7, 1})}},
		{name: "negative s", precision: "s", body: "m v=1 -5",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{-5000, 1})}},
		{name: "no timestamp takes now whatever the precision", precision: "h", body: "m v=1",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{now, 1})}},
		{
			name: "timestamps that overflow milliseconds", precision: "s",
			body: "m v=1 9223372036854775807\nm v=2 -9223372036854775808\nm v=3 9223372036854775",
			want: []Series{lpSeries("m.v", lpLabels(), Sample{9_223_372_036_854_775_000, 3})},
			rejected: []Rejection{
				{0, -1, `line 1: timestamp "9223372036854775807" is out of range`},
				{1, -1, `line 2: timestamp "-9223372036854775808" is out of range`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, rejected, err := ParseLineProtocol([]byte(tt.body), tt.precision, lpNow)
			if err != nil {
				t.Fatalf("ParseLineProtocol: %v", err)
			}
			lpCheckSeries(t, got, tt.want)
			if len(rejected) != 0 || len(tt.rejected) != 0 {
				if !reflect.DeepEqual(rejected, tt.rejected) {
					t.Errorf("rejections:\n got %+v\nwant %+v", rejected, tt.rejected)
				}
			}
		})
	}
}

// lpCheckSeries compares series exactly: names, labels, hosts, times and value bits (so -0 is not 0).
func lpCheckSeries(t *testing.T, got, want []Series) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d:\n got %s\nwant %s", len(got), len(want), lpFmtSeries(got), lpFmtSeries(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		same := g.Name == w.Name && g.Host == w.Host && reflect.DeepEqual(g.Labels, w.Labels) &&
			len(g.Samples) == len(w.Samples)
		for j := 0; same && j < len(g.Samples); j++ {
			same = g.Samples[j].TimeMs == w.Samples[j].TimeMs &&
				math.Float64bits(g.Samples[j].Value) == math.Float64bits(w.Samples[j].Value)
		}
		if !same {
			t.Errorf("series %d:\n got %s\nwant %s", i, lpFmtSeries(got[i:i+1]), lpFmtSeries(want[i:i+1]))
		}
	}
}

func lpFmtSeries(ss []Series) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  {%q labels=%q host=%q samples=%v}", s.Name, s.Labels, s.Host, s.Samples)
	}
	return b.String()
}

func TestParseLineProtocolUnknownPrecision(t *testing.T) {
	t.Parallel()
	for _, precision := range []string{"x", "ns ", "MS", "sec", "d", "µs"} {
		series, rejected, err := ParseLineProtocol([]byte("m v=1 0"), precision, lpNow)
		if err == nil || series != nil || rejected != nil {
			t.Errorf("precision %q: got %v, %v, %v; want only an error", precision, series, rejected, err)
		}
	}
}

func FuzzParseLineProtocol(f *testing.F) {
	for _, seed := range []string{
		"cpu,cpu=cpu0,host=web-1 usage_idle=98.2,usage_user=1.1 1764300000000000000\n",
		"temp value=21.5",
		"m a=1i,b=2u,c=true,d=F,e=-1.5e-3 -1",
		"syslog,host=h msg=\"disk \\\"sda\\\" full\",sev=3i 0",
		"m s=\"two\nlines\",v=1 5\nm v=2 6",
		"m s=\"open,v=2 0\nm v=3 0",
		"# comment\r\n\r\ncpu v=1 1\r\n",
		`cpu\,main,region\ zone=us\,east\ 1 value\ ms=1 0`,
		`cpu,path=C:\temp v=1 0\`,
		"cpu,host=a,host=b v=1\ncpu v=1,v=2\ncpu v",
		"m v=9223372036854775808i,w=NaN,x=inf,y=1e400 0",
		"m,t=\xff v\x00=1 0",
		"cpu,b=2,a=1 v=1 1\ncpu,a=1,b=2 v=2 2",
		"cpu a.b=1\ncpu.a b=2",
		"   \t cpu  v=1   9223372036854775807  ",
	} {
		f.Add([]byte(seed), uint8(0))
	}
	f.Add([]byte("m v=1 9223372036854775807"), uint8(4))
	f.Add([]byte("m v=1 -9223372036854775808"), uint8(6))

	precisions := []string{"ns", "n", "", "us", "s", "ms", "m", "h", "u", "bogus"}
	f.Fuzz(func(t *testing.T, body []byte, pi uint8) {
		precision := precisions[int(pi)%len(precisions)]
		series, rejected, err := ParseLineProtocol(body, precision, lpNow)
		if precision == "bogus" {
			if err == nil {
				t.Fatal("unknown precision accepted")
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseLineProtocol: %v", err)
		}

		lines := bytes.Count(body, []byte("\n")) + 1
		equals := bytes.Count(body, []byte("="))
		if len(rejected) > lines*(equals+1) {
			t.Fatalf("%d rejections for %d lines and at most %d fields", len(rejected), lines, equals)
		}
		// A line is refused whole once, or field by field, each field at most once.
		type at struct{ line, field int }
		seen := make(map[at]bool)
		whole, fieldwise := make(map[int]bool), make(map[int]bool)
		for _, r := range rejected {
			if r.Series < 0 || r.Series >= lines || r.Sample < -1 || r.Sample >= equals || r.Reason == "" {
				t.Fatalf("rejection %+v out of range (%d lines, %d '=')", r, lines, equals)
			}
			if !strings.HasPrefix(r.Reason, fmt.Sprintf("line %d", r.Series+1)) {
				t.Fatalf("rejection %+v does not name its line", r)
			}
			if seen[at{r.Series, r.Sample}] || whole[r.Series] || (r.Sample == -1 && fieldwise[r.Series]) {
				t.Fatalf("line %d rejected twice: %+v", r.Series, rejected)
			}
			seen[at{r.Series, r.Sample}] = true
			if r.Sample == -1 {
				whole[r.Series] = true
			} else {
				fieldwise[r.Series] = true
			}
		}

		keys := make(map[string]bool)
		samples := 0
		for _, s := range series {
			if s.Name == "" || len(s.Samples) == 0 || s.Labels == nil {
				t.Fatalf("series %+v has no name, no samples or nil labels", s)
			}
			if s.Host != s.Labels["host"] {
				t.Fatalf("series %+v: host does not match its host label", s)
			}
			key := fmt.Sprintf("%q %q", s.Name, s.Labels)
			if keys[key] {
				t.Fatalf("series %s is not merged", key)
			}
			keys[key] = true
			for _, p := range s.Samples {
				if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
					t.Fatalf("series %q holds %v", s.Name, p.Value)
				}
			}
			samples += len(s.Samples)
		}
		if samples > equals {
			t.Fatalf("%d samples from %d '='", samples, equals)
		}

		again, rejectedAgain, _ := ParseLineProtocol(body, precision, lpNow)
		if !reflect.DeepEqual(series, again) || !reflect.DeepEqual(rejected, rejectedAgain) {
			t.Fatal("parsing the same body twice gave different results")
		}
	})
}

// lpTelegrafBody returns about size bytes of what Telegraf sends every interval for many hosts: per-CPU
// and total cpu, mem, disk and system lines, sorted tags, nanosecond timestamps.
func lpTelegrafBody(size int) []byte {
	var b bytes.Buffer
	ts := int64(1_764_300_000_000_000_000)
	for round := 0; b.Len() < size; round++ {
		for h := 0; h < 40 && b.Len() < size; h++ {
			host := fmt.Sprintf("web-%d", h)
			for c := 0; c < 4; c++ {
				fmt.Fprintf(&b, "cpu,cpu=cpu%d,host=%s usage_idle=%.1f,usage_user=%.1f,usage_system=%.2f,usage_iowait=0 %d\n",
					c, host, 90+float64((round+c)%10), 1.1+float64(h%7), 0.35, ts)
			}
			fmt.Fprintf(&b, "mem,host=%s available=%di,used_percent=%.6f,total=16777216000i %d\n",
				host, 8_000_000_000+round*4096, 52.123456+float64(h), ts)
			fmt.Fprintf(&b, "disk,device=sda1,fstype=ext4,host=%s,mode=rw,path=/ free=%di,used_percent=41.5 %d\n",
				host, 100_000_000_000-round*512, ts)
			fmt.Fprintf(&b, "system,host=%s load1=0.42,load5=0.37,load15=0.3,n_cpus=4i,uptime=%di %d\n",
				host, 86_400+round*10, ts)
		}
		ts += 10_000_000_000
	}
	return b.Bytes()
}

func BenchmarkParseLineProtocol(b *testing.B) {
	body := lpTelegrafBody(1 << 20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		series, rejected, err := ParseLineProtocol(body, "ns", lpNow)
		if err != nil || len(rejected) != 0 || len(series) == 0 {
			b.Fatalf("got %d series, %d rejections, %v", len(series), len(rejected), err)
		}
	}
}

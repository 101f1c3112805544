package ingest

import (
	"fmt"
	"testing"
)

func TestDecodeJSONPush(t *testing.T) {
	push, series, rejected, err := DecodeJSONPush([]byte(`{"host": {"name": "web-1", "labels": {"env": "prod"}},
		"metrics": [{"name": "cpu", "labels": {"cpu": "0"}, "points": [[1764300000000, 12.5], [1.7643e12, -1], [1, 2, 3], ["x", 1], [5, "y"], null]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if push.Host.Name != "web-1" || len(series) != 1 || series[0].Host != "web-1" || series[0].Labels["cpu"] != "0" {
		t.Fatalf("decoded %+v %+v", push, series)
	}
	want := []Sample{{1764300000000, 12.5}, {1764300000000, -1}}
	if len(series[0].Samples) != 2 || series[0].Samples[0] != want[0] || series[0].Samples[1] != want[1] {
		t.Errorf("samples %+v, want %+v", series[0].Samples, want)
	}
	if len(rejected) != 4 {
		t.Fatalf("rejections %+v, want points 2 to 5", rejected)
	}
	for i, r := range rejected {
		if r.Series != 0 || r.Sample != i+2 || r.Reason == "" {
			t.Errorf("rejection %d = %+v", i, r)
		}
	}
	for _, bad := range []string{``, `[]`, `{"metrics": {}}`, `{"metrics": []} {}`, `{"host": {}, "metrics": []}`, `{"metrics": [], "x": 1}`} {
		if _, _, _, err := DecodeJSONPush([]byte(bad)); err == nil {
			t.Errorf("DecodeJSONPush(%q) accepted a malformed body", bad)
		}
	}
}

func FuzzDecodeJSONPush(f *testing.F) {
	for _, seed := range []string{
		`{"metrics": [{"name": "m", "points": [[1, 2]]}]}`,
		`{"host": {"name": "h", "labels": {"a": "b"}, "metadata": {"os": "linux"}}, "metrics": []}`,
		`{"metrics": [{"name": "m", "labels": {"k": "v"}, "points": [[1e3, 2], [" 1", 2], [1,], [], [[1], 2]]}]}`,
		`{"metrics": [{"name": "m", "points": [[9223372036854775807, 1e308], [-9223372036854775808, -1e-308]]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		push, series, rejected, err := DecodeJSONPush(body)
		if err != nil {
			return
		}
		if len(series) != len(push.Metrics) {
			t.Fatalf("%d series for %d metrics", len(series), len(push.Metrics))
		}
		points := 0
		for i, s := range series {
			points += len(push.Metrics[i].Points)
			if push.Host != nil && s.Host != push.Host.Name {
				t.Fatalf("series %d host %q, push host %q", i, s.Host, push.Host.Name)
			}
		}
		kept := 0
		for _, s := range series {
			kept += len(s.Samples)
		}
		if kept+len(rejected) != points {
			t.Fatalf("%d kept + %d rejected != %d points", kept, len(rejected), points)
		}
		for _, r := range rejected {
			if r.Reason == "" {
				t.Fatalf("rejection without a reason: %+v", r)
			}
		}
	})
}

func BenchmarkDecodeJSONPush(b *testing.B) {
	var buf []byte
	buf = append(buf, `{"host":{"name":"web-1"},"metrics":[`...)
	for i := range 100 {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = fmt.Appendf(buf, `{"name":"bench.metric","labels":{"series":"s%d","cpu":"total"},"points":[[1764300000000,%d.5]]}`, i, i)
	}
	buf = append(buf, `]}`...)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := DecodeJSONPush(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// A point that is not JSON fails the body, as any other syntax error; one that is JSON of the wrong
// shape is refused alone.
func TestDecodeJSONPushIsStrict(t *testing.T) {
	for _, v := range []string{"NaN", "Infinity", "-Infinity", "+1", "01", ".5", "1.", "1e", "0x10", "1_000", "- 1"} {
		body := fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[1764300000000, %s]]}]}`, v)
		if _, _, _, err := DecodeJSONPush([]byte(body)); err == nil {
			t.Errorf("value %s: accepted", v)
		}
		body = fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[%s, 1]]}]}`, v)
		if _, _, _, err := DecodeJSONPush([]byte(body)); err == nil {
			t.Errorf("timestamp %s: accepted", v)
		}
	}
	for v, want := range map[string]float64{"-0": 0, "0": 0, "1e3": 1000, "-1.5E-2": -0.015, " 2 ": 2} {
		_, series, rejected, err := DecodeJSONPush([]byte(fmt.Sprintf(`{"metrics": [{"name": "m", "points": [[1, %s]]}]}`, v)))
		if err != nil || len(rejected) != 0 || series[0].Samples[0].Value != want {
			t.Errorf("value %s: %v %v %v", v, series, rejected, err)
		}
	}
	_, _, rejected, err := DecodeJSONPush([]byte(`{"metrics": [{"name": "m", "points": [[1, 1e999], [1, "NaN"], [1, null]]}]}`))
	if err != nil || len(rejected) != 3 {
		t.Errorf("JSON of the wrong shape: %v, %v", rejected, err)
	}
}

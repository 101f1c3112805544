package promql

import (
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// PromName is the name PromQL knows an infrawatch series by: its name with every '.' as '_'
// (cpu.usage_pct is cpu_usage_pct). Names without dots, such as every remote-written series', stay as
// they are. Other characters are kept: PromQL reaches such a name quoted ({"disk-io"}).
func PromName(name string) string { return strings.ReplaceAll(name, ".", "_") }

// seriesLabels is the PromQL label set of a stored series: __name__ (PromName of its name) and its
// labels, host included, leaving out those with an empty value (PromQL takes an empty label as an
// absent one) and a stored label named __name__ (the name column says what the series is called).
func seriesLabels(b *labels.ScratchBuilder, name string, stored map[string]string) labels.Labels {
	b.Reset()
	b.Add(model.MetricNameLabel, PromName(name))
	for k, v := range stored {
		if v != "" && k != model.MetricNameLabel {
			b.Add(k, v)
		}
	}
	b.Sort()
	return b.Labels()
}

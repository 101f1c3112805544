// Package promql evaluates PromQL over infrawatch's storage with the upstream engine
// (github.com/prometheus/prometheus/promql), for one tenant at a time, and answers the series and label
// listings of the Prometheus HTTP API. internal/api serves it under /prometheus/api/v1, so that
// Grafana's Prometheus data source and other PromQL tools work against infrawatch as they are.
//
// The engine is upstream's, unchanged; this package is its storage (store, a storage.Queryable): for each
// selector it reads the tenant's series and their samples through the tenant runner, so row-level
// security and the api views show it nothing of another tenant, each statement bounded by the statement
// timeout.
//
// Names. PromQL knows a series by __name__ and its labels. An infrawatch series has a name (which may
// hold dots: cpu.usage_pct) and labels, host among them: its __name__ is the name with every '.' as '_'
// (PromName: cpu_usage_pct), and its labels are its own, those with an empty value left out. Names
// without dots, every remote-written series' among them, keep theirs. Two stored series whose PromQL
// label sets are equal (cpu.load and cpu_load with the same labels) are one PromQL series, their samples
// merged (at a time both have, one of them is kept).
//
// What SQL does. A selector's matchers narrow the read in SQL (pushDown): exact names and
// alternations of names through an index on the PromQL name (migration 000017), name prefixes, and =,
// !=, =~ over alternations, !~ over alternations and prefixes on labels as a jsonpath predicate; the
// time range bounds the samples read (the engine's hints: exactly the milliseconds it needs). Every
// matcher is then applied exactly in Go, so a regular expression SQL cannot express (PostgreSQL's
// dialect is not RE2) is still answered right.
//
// Raw or rollup. tiers.go says exactly when a selector is read from a rollup tier rather than raw
// samples (only where that gives the raw answer; never for rate and its kin). The answer is the same
// either way; a tier reads a bucket where raw reads every sample in it.
//
// Limits (Config): the samples a query may read and hold, the series a selector may match, the
// query's time, and a range query's steps (11,000, as Prometheus). Refusals are *Error values typed
// as the Prometheus HTTP API types them (bad_data, execution, timeout, …), which the API answers as
// Prometheus does.
package promql

-- PromQL over infrawatch's series (internal/promql): an index for selecting a tenant's series by their
-- PromQL name. infrawatch names may hold dots (cpu.usage_pct); PromQL sees them with every '.' as '_'
-- (cpu_usage_pct), so a selector's name matches replace(name, '.', '_'). The index serves exact names
-- (=, and regular expressions that are alternations of literals) and prefixes (LIKE 'node\_cpu%';
-- text_pattern_ops, so whatever the database's collation), the tenant first as everywhere in app.
CREATE INDEX series_prom_name_idx ON app.series (tenant_id, replace(name, '.', '_') text_pattern_ops);

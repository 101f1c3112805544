-- Analyst queries on the BI views (sql/bi/README.md documents their columns). Run them as a BI login
-- (psql "postgres://bi_…@host:5432/infrawatch?sslmode=require" -f sql/bi/examples.sql): each answers
-- for the login's tenant only. A test runs every one of them as a BI login (internal/bi), so they stay
-- in step with the views. Each starts with a "-- name:" line; times are relative to now().

-- name: top_hosts_by_cpu_last_week
-- The ten hosts with the highest CPU use over the last 7 days, from the hourly rollup: the average
-- weighs every sample alike (sum over count), the peak is the highest sample.
SELECT host_name,
       round((sum(sum_value) / sum(sample_count))::numeric, 1) AS avg_cpu_pct,
       round(max(max_value)::numeric, 1) AS peak_cpu_pct
  FROM bi.samples_1h
 WHERE metric = 'cpu.usage_pct' AND labels->>'cpu' = 'total'
   AND bucket >= now() - interval '7 days'
 GROUP BY host_name
 ORDER BY avg_cpu_pct DESC
 LIMIT 10;

-- name: availability_by_check_per_month
-- Availability and downtime of every check, month by month over the last year.
SELECT date_trunc('month', bucket) AS month, check_name,
       round(100 * sum(up_count)::numeric / sum(total_count), 3) AS availability_pct,
       round(sum(downtime_seconds)::numeric / 60, 1) AS downtime_minutes
  FROM bi.availability_1d
 WHERE bucket >= date_trunc('month', now()) - interval '11 months'
 GROUP BY 1, 2
 ORDER BY 1, 2;

-- name: p95_latency_by_region_last_week
-- The 95th percentile of check latency per region over the last 7 days, from the raw results: the
-- region is the check's poller location, else its host's "region" label.
SELECT coalesce(r.location, h.labels->>'region', 'unknown') AS region,
       count(*) AS results,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms)::numeric, 1) AS p95_latency_ms
  FROM bi.check_results r
  LEFT JOIN bi.hosts h ON h.host_id = r.host_id
 WHERE r.time >= now() - interval '7 days' AND r.latency_ms IS NOT NULL
 GROUP BY 1
 ORDER BY p95_latency_ms DESC;

-- name: log_errors_per_host_per_day
-- Log lines of severity error or worse per host and day, over the last 30 days.
SELECT date_trunc('day', time) AS day, coalesce(host_name, '(no host)') AS host_name, count(*) AS errors
  FROM bi.logs
 WHERE time >= now() - interval '30 days'
   AND severity IN ('error', 'critical', 'alert', 'emergency')
 GROUP BY 1, 2
 ORDER BY 1 DESC, 3 DESC;

-- name: grafana_cpu_by_host_5m
-- A Grafana time-series panel: CPU use per host in 5-minute buckets. In Grafana the time condition is
-- WHERE $__timeFilter(bucket) (README § BI access); here it is the last 6 hours.
SELECT bucket AS time, host_name AS metric, sum(sum_value) / sum(sample_count) AS value
  FROM bi.samples_5m
 WHERE bucket >= now() - interval '6 hours' AND bucket < now()
   AND metric = 'cpu.usage_pct' AND labels->>'cpu' = 'total'
 GROUP BY 1, 2
 ORDER BY 1, 2;

-- name: hosts_not_reporting
-- Hosts whose agent has been silent for more than 15 minutes.
SELECT host_name, labels, last_seen_at, now() - last_seen_at AS silent_for
  FROM bi.hosts
 WHERE last_seen_at < now() - interval '15 minutes'
 ORDER BY last_seen_at;

-- name: checks_down_now
-- Enabled checks that are down, longest first.
SELECT check_name, kind, target, host_name, status_reason, status_since, now() - status_since AS down_for
  FROM bi.checks
 WHERE enabled AND status = 'down'
 ORDER BY status_since;

-- name: fullest_filesystems
-- The 20 fullest filesystems, by the newest hourly value of each over the last day.
SELECT host_name, mount, measured_at, round(used_pct::numeric, 1) AS used_pct
  FROM (SELECT DISTINCT ON (host_name, labels->>'mount')
               host_name, labels->>'mount' AS mount, bucket AS measured_at, last_value AS used_pct
          FROM bi.samples_1h
         WHERE metric = 'disk.used_pct' AND bucket >= now() - interval '1 day'
         ORDER BY host_name, labels->>'mount', bucket DESC) latest
 ORDER BY used_pct DESC
 LIMIT 20;

-- name: daily_memory_peak_per_host
-- Each host's highest memory use per day over the last 30 days, from the daily rollup.
SELECT bucket AS day, host_name, round(max_value::numeric, 1) AS peak_mem_used_pct
  FROM bi.samples_1d
 WHERE metric = 'mem.used_pct' AND bucket >= now() - interval '30 days'
 ORDER BY 1, 2;

-- name: worst_hours_last_day
-- The hours of the last day in which a check was not always up, worst first.
SELECT bucket AS hour, check_name, round(100 * availability::numeric, 2) AS availability_pct,
       round(latency_avg_ms::numeric, 1) AS latency_avg_ms
  FROM bi.availability_1h
 WHERE bucket >= now() - interval '24 hours' AND availability < 1
 ORDER BY availability, bucket DESC
 LIMIT 20;

-- name: latest_cpu_sample_per_host
-- The newest raw CPU sample of each host within the last hour (raw samples are kept for the raw
-- retention only, 30 days by default).
SELECT DISTINCT ON (host_name) host_name, time, round(value::numeric, 1) AS cpu_pct
  FROM bi.samples
 WHERE metric = 'cpu.usage_pct' AND labels->>'cpu' = 'total' AND time >= now() - interval '1 hour'
 ORDER BY host_name, time DESC;

-- name: series_per_metric
-- Which metrics make the most series (cardinality), on how many hosts.
SELECT metric, count(*) AS series, count(DISTINCT host_name) AS hosts, min(created_at) AS first_seen
  FROM bi.series
 GROUP BY metric
 ORDER BY series DESC, metric
 LIMIT 20;

-- name: alerts_per_rule_last_month
-- How often each alert rule fired over the last 30 days, and for how long in all: from the changes into
-- and out of firing in the alerts' history.
SELECT rule_name, count(*) FILTER (WHERE to_state = 'firing') AS times_fired,
       count(*) FILTER (WHERE kind = 'ack') AS acknowledgements
  FROM bi.alert_events
 WHERE time >= now() - interval '30 days'
 GROUP BY rule_name
 ORDER BY times_fired DESC, rule_name;

-- name: alerts_firing_now
-- Alerts firing now, longest first, with whether someone has acknowledged them.
SELECT rule_name, severity, coalesce(host_name, check_name, '') AS about, summary,
       round(firing_seconds::numeric / 60) AS firing_minutes, acked_by
  FROM bi.alerts
 WHERE state = 'firing'
 ORDER BY firing_seconds DESC;

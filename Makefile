# infrawatch — `make help` lists the targets.

SQLC_VERSION := v1.31.1
SQLC := go run github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)
STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.8.2
GO_TEST_FLAGS ?= -race -count=1 -timeout 30m
FUZZTIME ?= 20s
DURATION ?= 10m

.PHONY: help run test test-short fuzz bench bench-otlp bench-query bench-bi bench-promql bench-scale bench-poller bench-scrape bench-notify bench-alerts bench-sla chaos build vet lint generate check-generated prerequisites clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

run: prerequisites ## run everything locally (infrawatch dev): PostgreSQL under ./.infrawatch, migrated, seeded, served on :8080
	go run ./cmd/infrawatch dev

test: prerequisites vet ## run every test against a real PostgreSQL (and TimescaleDB where installed)
	go test $(GO_TEST_FLAGS) ./...

test-short: ## the unit tests only, for a quick loop: no database, no real peers (snmpd, prometheus), no race detector
	go test -short -count=1 ./...

fuzz: prerequisites ## run every fuzz target for FUZZTIME each (default 20s; CI runs it), one after the other
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' cmd internal); do \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
	    echo "== $$target ($$(dirname $$file)), $(FUZZTIME)"; \
	    go test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) ./$$(dirname $$file); \
	  done; \
	done

bench: prerequisites ## ingest benchmark: raw COPY vs HTTP ingest on a throwaway cluster (minutes; see cmd/infrawatch-bench)
	go run ./cmd/infrawatch-bench

bench-otlp: prerequisites ## OTLP benchmark: OTLP/HTTP protobuf ingest vs our JSON ingest of the same samples, interleaved (about 3 minutes)
	go run ./cmd/infrawatch-bench otlp

bench-query: prerequisites ## query benchmark: dashboard queries on rollups vs raw SQL, 8.64 M rows (2 to 4 minutes; FLAVOR=postgres for that flavor)
	go run ./cmd/infrawatch-bench query $(if $(FLAVOR),--flavor $(FLAVOR))

bench-bi: prerequisites ## BI benchmark: a Grafana panel's query as a BI login vs the owner's SQL without views, with its EXPLAIN, 60 M rows (10 to 20 minutes; FLAVOR=postgres for that flavor)
	go run ./cmd/infrawatch-bench bi $(if $(FLAVOR),--flavor $(FLAVOR))

bench-alerts: prerequisites ## alerter benchmark: 12,000 rules every minute, CPU and lag in steady state, set-based vs one query per rule (about 12 minutes; FLAVOR=postgres for that flavor)
	go run ./cmd/infrawatch-bench alerts $(if $(FLAVOR),--flavor $(FLAVOR))

bench-promql: prerequisites ## PromQL benchmark: sum by (host) rate and histogram_quantile over 1,000 series each × 24 h through /prometheus/api/v1 vs a real Prometheus with the same data (about 30 minutes on 2 CPUs; FLAVOR=postgres for that flavor)
	go run ./cmd/infrawatch-bench promql $(if $(FLAVOR),--flavor $(FLAVOR))

bench-scale: prerequisites ## scale benchmark: 1,000,000 active series (10,000 hosts × 100 at 10 s) from 1,000 agents with rollups, retention and dashboards running; sustained vs offered and raw COPY, ingest and dashboard p99, memory, CPU, disk, bytes per sample (about 20 minutes on 2 CPUs; DURATION=10m steady phase, HOSTS=, AGENTS= to change the size, FLAVOR=postgres for that flavor)
	go run ./cmd/infrawatch-bench scale --duration $(DURATION) $(if $(HOSTS),--hosts $(HOSTS)) $(if $(AGENTS),--agents $(AGENTS)) $(if $(FLAVOR),--flavor $(FLAVOR))

bench-poller: prerequisites ## poller benchmark: HTTP vs blackbox_exporter, ICMP and SNMP CPU at scale (about 5 minutes; see cmd/infrawatch-pollbench)
	go run ./cmd/infrawatch-pollbench

bench-scrape: prerequisites ## scrape benchmark: 1,000 node_exporter-sized targets a minute, the poller's CPU vs Prometheus' (about 6 minutes)
	go run ./cmd/infrawatch-pollbench --only scrape

bench-notify: prerequisites ## notification benchmark: 10,000 alerts over 100 webhook channels, one slow and one failing, vs one queue (2 to 4 minutes; see cmd/infrawatch-notifybench)
	go run ./cmd/infrawatch-notifybench

bench-sla: prerequisites ## SLA benchmark: GET /api/v1/sla over 1,000 checks × 30 days of 60 s results vs the same from raw results in SQL, and a monthly report rendered and sent (CHECKS=, DAYS= to change the size; 10 to 30 minutes)
	INFRAWATCH_BENCH_SLA=1 $(if $(CHECKS),INFRAWATCH_BENCH_SLA_CHECKS=$(CHECKS)) $(if $(DAYS),INFRAWATCH_BENCH_SLA_DAYS=$(DAYS)) \
	  go test -count=1 -timeout 90m -run '^TestSLABenchmark$$' -v ./internal/api/

chaos: prerequisites ## chaos run: 3 replicas, agents over 3 protocols, checks, replicas killed and paused, PostgreSQL restarted, queues filled; fails on any loss, duplicate, double run, rollup mismatch or late sample never seen (DURATION=10m, FLAVOR=postgres, SEED=)
	go run ./cmd/infrawatch-chaos --duration $(DURATION) $(if $(FLAVOR),--flavor $(FLAVOR)) $(if $(SEED),--seed $(SEED))

build: ## build bin/infrawatch
	CGO_ENABLED=0 go build -trimpath -o bin/infrawatch ./cmd/infrawatch

vet: ## go vet and gofmt
	go vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }

lint: ## staticcheck (golangci-lint's core checks, without its download)
	$(STATICCHECK) ./...

generate: ## regenerate the sqlc code in internal/db/dbsqlc from migrations/ and queries/
	$(SQLC) generate

check-generated: generate ## fail when the committed sqlc code is stale
	@git diff --exit-code -- internal/db/dbsqlc || { echo "internal/db/dbsqlc is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- internal/db/dbsqlc)" || { echo "make generate wrote files that are not committed:"; git status --porcelain -- internal/db/dbsqlc; exit 1; }

prerequisites: ## check that the PostgreSQL server binaries are installed; say what to install if not
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "The PostgreSQL server binaries (initdb, postgres) are missing."; \
	  echo "On Debian or Ubuntu: sudo apt-get update && sudo apt-get install -y postgresql"; \
	  echo "Or point the tests at a server of your own: INFRAWATCH_TEST_DATABASE_URL=postgres://superuser@host/postgres"; \
	  exit 1; }

clean: ## remove build output and the local dev data directory
	rm -rf bin .infrawatch

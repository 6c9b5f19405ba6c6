# Everything needs only Python 3.11+: the first target run creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Small by default; the issue's full size is --licences 10000.
BENCH_MONITORING_ARGS ?= --licences 1000 --roster 10000

.PHONY: install run serve test test-postgres lint check demo bench audit clean

$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e ".[dev]"
	touch $@

install: $(INSTALLED)

## Set up, migrate, seed the demo population on first run, and serve on 127.0.0.1:8000
## (gunicorn, with the monitoring delivery worker beside it).
run: $(INSTALLED)
	$(FLASK) db upgrade
	$(FLASK) seed demo --if-empty --base-url http://$(HOST):$(PORT)
	$(FLASK) monitoring worker & worker=$$!; trap 'kill $$worker' EXIT INT TERM; \
	$(BIN)/gunicorn --workers 2 --bind $(HOST):$(PORT) --access-logfile - "app:app"

## Run the test suite (SQLite; set TEST_DATABASE_URL for PostgreSQL).
test: $(INSTALLED)
	$(BIN)/python -m pytest -q -n 2

test-postgres: $(INSTALLED)
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -q -n 2

lint: $(INSTALLED)
	$(BIN)/ruff check .

## Schema drift check: the models and the migrations must agree (both stores).
check: $(INSTALLED)
	$(BIN)/python -m core.schema_check

## Scripted walkthrough against the running service (make run in another terminal).
demo: $(INSTALLED)
	$(BIN)/python -m seed.demo_walkthrough --url http://$(HOST):$(PORT)

## Throughput/latency of verifications vs GET /healthz under gunicorn, SQLite and PostgreSQL,
## 1M-licence scaling and bulk import rate; then monitoring SET deliveries/s and the roster call
## (bench/monitoring.py); JSON in bench/results/. BENCH_ARGS / BENCH_MONITORING_ARGS=--help.
bench: $(INSTALLED)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.monitoring $(BENCH_MONITORING_ARGS)

## pip-audit on requirements.lock and bandit on the code; accepted findings: audit.toml.
## Fails when no advisory service is reachable; AUDIT_ADVISORIES=optional makes that a warning.
audit: $(INSTALLED)
	$(BIN)/python -m tests.quality.audit

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis

# Everything needs only Python 3.11+: the first target run creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install run serve test test-postgres lint check demo bench audit clean

$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e ".[dev]"
	touch $@

install: $(INSTALLED)

## Set up, migrate, seed the demo population on first run, and serve on 127.0.0.1:8000.
## The demo card authority's CRL is renewed at start-up when stale or near its nextUpdate,
## and kept fresh while serving by a watcher that ends with this target.
run: $(INSTALLED)
	$(FLASK) db upgrade
	$(FLASK) seed demo --if-empty --base-url http://$(HOST):$(PORT)
	$(FLASK) card-authority refresh-crl
	$(FLASK) card-authority refresh-crl --watch & watcher=$$!; \
	trap 'kill $$watcher 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn -c python:core.gunicorn_config --bind $(HOST):$(PORT) "app:app"

## Run the test suite (SQLite; set TEST_DATABASE_URL for PostgreSQL).
test: $(INSTALLED)
	$(BIN)/python -m pytest -q -n 2

test-postgres: $(INSTALLED)
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -q -n 2

lint: $(INSTALLED)
	$(BIN)/ruff check .

## Schema drift check: the models and the migrations must agree (both stores).
check: $(INSTALLED)
	$(BIN)/python -m tests.quality.schema_check

## Scripted walkthrough against the running service (make run in another terminal).
demo: $(INSTALLED)
	$(BIN)/python -m seed.demo_walkthrough --url http://$(HOST):$(PORT)

## Throughput/latency of verifications vs GET /healthz under gunicorn, SQLite and PostgreSQL,
## 1M-licence scaling and bulk import rate; JSON in bench/results/. BENCH_ARGS=--help for options.
bench: $(INSTALLED)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## pip-audit on requirements.lock and bandit on the code; accepted findings: audit.toml.
## Fails when no advisory service is reachable; AUDIT_ADVISORIES=optional makes that a warning.
audit: $(INSTALLED)
	$(BIN)/python -m tests.quality.audit

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis

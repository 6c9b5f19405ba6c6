# Everything needs only Python 3.11+: the first target run creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# What the service hands out (status list URIs, links, the walkthrough): where it serves.
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Small by default; the issue's full size is --licences 10000.
BENCH_MONITORING_ARGS ?= --licences 1000 --roster 10000

.PHONY: install run serve test test-postgres lint check demo bench audit clean screenshots translations

$(INSTALLED): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e ".[dev]"
	touch $@

install: $(INSTALLED)

## Set up, migrate, seed the demo population on first run (later runs say where its tokens
## and cards are), print the cross-device walkthrough, and serve on HOST:PORT (127.0.0.1:8000).
## The demo card authority's CRL is renewed at start-up when stale or near its nextUpdate,
## and kept fresh while serving by a watcher; the monitoring delivery worker runs beside
## gunicorn. Both end with this target.
run: $(INSTALLED)
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) db upgrade
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) seed demo --if-empty --base-url $(PUBLIC_BASE_URL)
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) card-authority refresh-crl
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) card-authority refresh-crl --watch & watcher=$$!; \
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(FLASK) monitoring worker & worker=$$!; \
	trap 'kill $$watcher $$worker 2>/dev/null' EXIT INT TERM; \
	PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) $(BIN)/gunicorn -c python:core.gunicorn_config \
	    --bind $(HOST):$(PORT) "app:app"

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

## Scripted walkthrough against the running service (make run in another terminal); the
## candidate answers HR with the card app (licence-card).
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

## Screenshots of the main pages (Japanese) into docs/screenshots/, by the browser tests.
screenshots: $(INSTALLED)
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/web/test_screenshots.py

## Re-extract the pages' messages and compile the catalogues (edit web/translations/ja/...po).
translations: $(INSTALLED)
	$(BIN)/pybabel extract -F web/babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--omit-header -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations
	$(BIN)/pybabel compile -d web/translations

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis

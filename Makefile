# exchangis — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FUZZ_STAMP := $(VENV)/.fuzz-installed
HOST ?= 127.0.0.1
EXCHANGIS_PORT ?= 8080
export EXCHANGIS_PORT

.PHONY: help install install-fuzz run test test-pg drills test-deploy lint api worker migrate services-up bench-logs \
	bench-history bench-gen bench-deploy bench-transfer fuzz clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with test and lint tools

run: $(STAMP)  ## embedded default: SQLite + embedded Redis + a worker + the API + a demo job
	$(PY) -m exchangis.cli up --demo

api: $(STAMP)  ## the API alone (needs EXCHANGIS_REDIS_URL or a running embedded Redis)
	$(PY) -m exchangis.cli api

worker: $(STAMP)  ## one Celery worker (with the reaper schedule)
	$(PY) -m exchangis.cli worker

migrate: $(STAMP)  ## create or upgrade the metadata schema
	$(PY) -m exchangis.cli db upgrade

services-up:  ## start local Redis/PostgreSQL/MariaDB when they are down
	bash scripts/services-up

test: $(STAMP)  ## run the whole test suite (real Redis, PostgreSQL, MariaDB, Celery workers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-pg: $(STAMP)  ## the end-to-end tests again, on PostgreSQL as the metadata database
	EXCHANGIS_TEST_METADATA=postgresql $(PY) -m pytest -m "e2e and not drill and not data_path" $(PYTEST_ARGS)

drills: $(STAMP)  ## fault drills: real faults against private deployments (docs/running.md)
	$(PY) -m pytest tests/drills -m drill $(PYTEST_ARGS)

test-deploy: $(STAMP)  ## docs/deploy.md's recipe on 3 hosts (network namespaces; root), a host lost
	$(PY) -m pytest tests/deploy -m deploy $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff and mypy
	$(VENV)/bin/ruff check exchangis workers tests bench scripts
	$(VENV)/bin/ruff format --check exchangis workers tests bench scripts
	$(VENV)/bin/mypy

bench-logs: $(STAMP)  ## log reader benchmark: 1M-line vs 1k-line log over HTTP (needs Redis)
	$(PY) bench/log_reader.py

bench-history: $(STAMP)  ## execution history list: 10k vs 100 executions over HTTP (needs Redis)
	$(PY) bench/history_list.py

bench-gen: $(STAMP)  ## generate bench_mixed (1M rows) in MariaDB and PostgreSQL, and its CSV
	$(PY) bench/gen_mixed.py --csv var/bench/bench_mixed.csv $(BENCH_ARGS)

bench-deploy: $(STAMP)  ## throughput of docs/deploy.md's layout on 1, 2, 3 hosts (root; BENCH_ARGS=...)
	$(PY) bench/deploy.py $(BENCH_ARGS)

bench-transfer: $(STAMP)  ## transfers vs mariadb/psql pipes, channels, orchestration (BENCH_ARGS=...)
	$(PY) bench/transfer.py $(BENCH_ARGS)

$(FUZZ_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[fuzz]'
	touch $(FUZZ_STAMP)

install-fuzz: $(FUZZ_STAMP)  ## add schemathesis to .venv (once: make fuzz needs it)

fuzz: $(FUZZ_STAMP)  ## schemathesis over every endpoint: no 5xx, every answer in the envelope (needs Redis)
	$(PY) scripts/fuzz.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

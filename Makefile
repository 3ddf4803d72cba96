# taskman: every target creates .venv and installs the project into it if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# `make run` needs only the runtime and honcho, not the test, lint and bench tools.
RUN_STAMP := $(VENV)/.run-stamp

.PHONY: install lock run migrate lint unit-test integration-test deploy-check si-test fault-test test bench bench-scale clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[run]'
	touch $(RUN_STAMP)

# requirements.lock: every runtime dependency (and setuptools, to build taskman) pinned with its
# hashes, for every platform, on Python 3.11; the image installs from it with --require-hashes.
# Run after changing pyproject.toml's dependencies (tests/deployment checks the lock covers them).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml docker/build-requirements.in --generate-hashes \
		--universal --python-version 3.11 --quiet -o requirements.lock

# The whole system in the foreground: API on $$PORT (default 8000), one worker per priority queue,
# the dispatcher; logs prefixed and interleaved; Ctrl-C stops them all. Without DATABASE_URL /
# BROKER_URL it runs on embedded defaults under ./var (SQLite, and a broker needing no server).
# First, once: the API's address, its Swagger UI and where the data lives.
run: migrate
	@PORT=$${PORT:-8000} $(BIN)/python -m entrypoints.welcome
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start --procfile Procfile --port $${PORT:-8000}

# Every Alembic migration not yet applied, on DATABASE_URL (unset: the SQLite file var/taskman.db).
migrate: $(RUN_STAMP)
	$(BIN)/python -m entrypoints.migrate

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict domain application adapters entrypoints
	$(BIN)/lint-imports
	$(BIN)/bandit --quiet -c pyproject.toml -r domain application adapters entrypoints

unit-test: $(STAMP)
	$(BIN)/pytest tests/unit

# Each adapter against the real servers: PostgreSQL on 127.0.0.1:5432 and Redis on :6379 must be
# up. Every test session creates its own databases and drops them. The Celery tests run real
# workers and dispatchers for seconds at a time: test files run side by side (one file per xdist
# process, as a file's tests share a running system), each on its own databases.
integration-test: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -n 3 --dist loadfile tests/integration

# The whole system as processes, tested over HTTP: on PostgreSQL + Redis (each process started on
# its own, as compose does) and on `make run`'s embedded defaults, side by side.
si-test: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -n 2 --dist loadscope tests/system

# No Docker engine here: the Dockerfile and compose file are checked statically.
deploy-check: $(STAMP)
	$(BIN)/pytest tests/deployment

# The fault matrix (issue 10): each fault hits a whole system of its own (its own PostgreSQL
# cluster, initdb'ed in a temporary folder, and its own redis-server) while clients create tasks;
# a ledger then checks the tasks table. Scenarios run side by side (mostly waiting on leases and
# polls). Writes tests/fault/results.md.
fault-test: $(STAMP)
	rm -rf tests/fault/.results
	$(BIN)/pytest -p no:cacheprovider -n 4 tests/fault

test: lint unit-test deploy-check integration-test si-test fault-test

# The benchmark (issue 7), not part of `make test`: taskman on a fresh PostgreSQL database and a
# redis-server of its own, measured against pgbench and bare Celery in the same run; then `make run`
# itself, black-box, under wrk; about 9 minutes. Writes bench/results/latest.json and
# bench/results/chart.png. Needs wrk (the Debian package, installed if missing).
bench: $(STAMP)
	$(BIN)/python -m bench

# Cost as the table grows (issue 12), not part of `make test`: taskman on a fresh PostgreSQL
# database, its tasks table filled to 1,000,000 then 10,000,000 rows of history, each figure
# measured at each size and compared with the table holding only queued work. Writes the table
# into docs/benchmark.md and bench/results/scale.json. Other sizes: SIZES=100000,1000000.
SIZES ?= 1000000,10000000
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --sizes $(SIZES)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

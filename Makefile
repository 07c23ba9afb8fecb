# The two commands of a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: install install-test run test schema playground clean

# The service alone for `make run`; the test tools only for `make test`.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install $(PIP_FLAGS) -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Migrate the embedded SQLite database, load the demo organisation if it is empty, serve.
run: install
	$(VENV)/bin/mandate migrate
	$(VENV)/bin/mandate demo --if-empty
	$(VENV)/bin/mandate serve

# The whole suite on SQLite, and again on PostgreSQL when MANDATE_TEST_POSTGRES_URL is set.
test: install-test
	$(PY) -m pytest -q

# Regenerate schema.graphql from the code (a test fails when they drift apart).
schema: install
	$(PY) -m mandate.gql

# Rebuild the playground (GraphiQL from npm) into gql/static/; needs Node 20+ and npm. The build is
# committed, so `make run` needs no Node; a test fails when playground/ changed since the build.
playground:
	cd playground && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# Mandate against the hand-written floor and PostGraphile 4 and 5 on PostgreSQL, with wrk (bench/README.md).
# BENCH_ARGS="--sqlite" for SQLite; bench/run --help for the rest.
.PHONY: bench
bench: install-test
	PYTHON=$(abspath $(PY)) bench/run $(BENCH_ARGS)

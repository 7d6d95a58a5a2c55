# Two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install run test lint clean browser bench bench-instructions postgres fhir-server

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/cds-service --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The benchmark (not part of the tests): service vs floors under gunicorn, load from wrk;
# then cds-cohort on synthetic Bulk Data exports of 1,000 and 10,000 patients.
bench: install
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" = 0 ] || { \
	  echo "make bench: wrk is not installed; install Debian's wrk (as root: make bench)"; exit 2; }
	@command -v wrk >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	@service=0; cohort=0; \
	  $(BIN)/python bench/run.py || service=$$?; \
	  $(BIN)/python bench/cohort.py || cohort=$$?; \
	  [ $$service = 0 ] && [ $$cohort = 0 ]

# Instructions per typical request, step by step, under valgrind: steady from run to run and
# machine to machine, where times are not (bench/instructions.py). About three minutes.
bench-instructions: install
	@command -v valgrind >/dev/null 2>&1 || [ "$$(id -u)" = 0 ] || { \
	  echo "make bench-instructions: valgrind is not installed; install Debian's valgrind as root"; exit 2; }
	@command -v valgrind >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	$(BIN)/python bench/instructions.py

# Debian's chromium for the browser tests of the caveat pages (they skip without it).
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" = 0 ] || { \
	  echo "make browser: chromium is not installed; install Debian's chromium as root"; exit 2; }
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Debian's PostgreSQL for the tests of the shared store (they skip without it; CI requires it).
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	  [ "$$(id -u)" = 0 ] || { \
	  echo "make postgres: PostgreSQL is not installed; install Debian's postgresql as root"; exit 2; }
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Medplum's FHIR server (pinned in tests/medplum/package-lock.json) for the tests of the fetch
# path against a server nobody here wrote (they skip without it; CI requires it). Medplum 4
# needs Node.js 20.19 or newer: the machine's Node 20, not Debian's nodejs 18.
MEDPLUM := tests/medplum
fhir-server: $(MEDPLUM)/node_modules/.installed

$(MEDPLUM)/node_modules/.installed: $(MEDPLUM)/package.json $(MEDPLUM)/package-lock.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "make fhir-server: Node.js 20.19 or newer with npm is needed (Medplum 4)"; exit 2; }
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' || { \
	  echo "make fhir-server: Node.js $$(node --version) is too old; Medplum 4 needs 20.19 or newer"; \
	  exit 2; }
	cd $(MEDPLUM) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis $(MEDPLUM)/node_modules

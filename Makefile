# Tocsin: `make demo` runs the product with New York demo data; `make test` runs the whole suite.
# Both set everything up on a fresh Debian/Ubuntu machine (apt-get, a local venv, local services).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
WITH_SERVICES := source var/services.env &&
# Python writes bytecode as it first imports a module, so each module in use is compiled once (the bootstrap
# compiles nothing). A machine-wide PYTHONDONTWRITEBYTECODE=1 would make every test process and every CLI run
# compile all it imports again, so it is cleared for these targets.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup services services-stop services-status demo test test-unit lint eval bench clean

help:
	@echo "make demo            set up, start PostGIS + Mosquitto, load NYC zones, run API + dispatcher"
	@echo "make test            set up, start services, run the whole test suite (its pooled part twice, once via PgBouncer)"
	@echo "make lint            ruff (errors only) and the import rules (layering, no cycles)"
	@echo "make services        start the local PostGIS, Mosquitto and PgBouncer (idempotent)"
	@echo "make services-stop   stop them"
	@echo "make bench           benchmarks (python -m bench NAME... runs some); make eval: evaluations"

setup:
	@scripts/bootstrap.sh

services:
	@scripts/services.sh start

services-stop:
	@scripts/services.sh stop

services-status:
	@scripts/services.sh status

demo: setup services
	@scripts/demo.sh

# Ruff first, then the whole suite, which holds the rest of `make lint` (tests/unit/test_import_rules.py).
# Tests marked `pooled` run twice in it, the second time ([pooler]) through the local PgBouncer.
# TEST_JOBS pytest-xdist processes, each with its own database; a file's tests stay together in one process
# (--dist loadfile), so its module fixtures (servers, browsers) start once; files are handed out in the order
# tests/conftest.py gives (`heavy` ones first), not xdist's (most tests first). One more process than cores: a
# test often waits (a server starting, the broker, the browser), and the extra one keeps the cores busy
# (README.md, "Two commands", has the measurement).
TEST_JOBS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
PYTEST_PARALLEL := -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder
# Passed down to `setup`: after a fresh install, the bootstrap warms the tests' bytecode while services start.
test: export TOCSIN_WARM_TESTS := 1
test: setup services
	@$(VENV)/bin/ruff check .
	@$(WITH_SERVICES) $(PY) -m pytest -q $(PYTEST_PARALLEL)

lint: setup
	@$(VENV)/bin/ruff check .
	@$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_import_rules.py

test-unit: setup
	@$(PY) -m pytest -q tests/unit

eval: setup services
	@$(WITH_SERVICES) $(PY) -m bench eval

bench: setup services
	@$(WITH_SERVICES) $(PY) -m bench

clean: services-stop
	rm -rf var .venv .pytest_cache

# panorama-kpi developer tasks. `make` (or `make help`) lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv system-deps test demo bench lint format clean

help: ## list the targets
	@echo "panorama-kpi make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) PYTEST_ARGS='$(PYTEST_ARGS)'"

venv: $(STAMP) ## create .venv and install the package with its dev requirements

# Redone only when the requirements or the project metadata change.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "panorama-kpi needs Python >= 3.11 (set PYTHON=...)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

system-deps: ## install MariaDB and PostgreSQL server packages if missing (apt, needs root)
	PYTHON=$(PYTHON) scripts/install-system-deps.sh

test: system-deps venv ## run the test suite (starts throwaway MariaDB + PostgreSQL on 127.0.0.1)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv ## build a local lake from the bundled demo dataset and print a few KPIs
	$(PY) -m panorama_kpi.demo run

bench: system-deps venv ## measure extract throughput and memory against the native dump clients
	$(PY) bench/run.py --also-rows 3000000 $(BENCH_ARGS)
	$(PY) bench/incremental.py

lint: venv ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy panorama_kpi

format: venv ## apply ruff's formatter and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## remove the venv, caches and generated lakes/outputs
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache .benchmarks \
		build dist *.egg-info lake demo/lake demo/out demo/*.sqlite3 demo/*.duckdb bench/out
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# failwhale: every target does its own set-up, so a fresh clone needs no manual step.
#   make scenarios   run the scenario catalog (the main job)
#   make test        run the test suite (what CI runs)
#   make lab         start the lab and keep it running until Ctrl-C

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup lab lint test test-unit test-integration bench bench-smoke bench-stability bench-soak scenarios clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

# failwhale, and chaosfailwhale (its Chaos Toolkit extension, a distribution of its own).
$(STAMP): pyproject.toml extensions/chaosfailwhale/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./extensions/chaosfailwhale
	@touch $@

setup: $(STAMP) ## create .venv, install failwhale, find or install Prometheus
	@$(BIN)/failwhale setup

lab: setup ## start every service and Prometheus; Ctrl-C stops them all
	$(BIN)/failwhale up

lint: setup ## ruff (lint and format) over the tree, mypy over chaos/, services/common/, loadtest/ (make test runs it)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Unit tests are independent and CPU-bound: one worker per core. Integration tests run one at a
# time: each starts a lab whose figures and timings need the machine to itself.
test: setup lint ## lint, then every test (unit, integration with real Prometheus, browser, benchmark smokes)
	@$(BIN)/failwhale setup --browser --wrk
	$(BIN)/pytest -m "not integration" -n 2
	$(BIN)/pytest -m integration

test-unit: setup ## only the fast in-process tests
	$(BIN)/pytest -m "not integration" -n 2

test-integration: setup ## only the tests that start real processes
	@$(BIN)/failwhale setup --browser
	$(BIN)/pytest -m integration

bench: setup ## benchmarks that print figures (make test runs each in a few-second smoke mode)
	@$(BIN)/failwhale setup --wrk
	$(BIN)/python -m bench.metrics_overhead
	$(BIN)/python -m bench.lab_throughput

bench-smoke: setup ## the benchmarks in a few seconds each: do they still run? (figures mean nothing)
	@$(BIN)/failwhale setup --wrk
	$(BIN)/python -m bench.metrics_overhead --smoke
	$(BIN)/python -m bench.lab_throughput --smoke
	$(BIN)/python -m bench.stability --smoke
	$(BIN)/python -m bench.soak --smoke

bench-stability: setup ## run the quick headline 10 times on fresh labs: spread of every figure (about 10 min)
	$(BIN)/python -m bench.stability $(ARGS)

bench-soak: setup ## 30 minutes of evening load with faults and rollouts cycling: does any process grow?
	$(BIN)/python -m bench.soak $(ARGS)

scenarios: setup ## run every scenario (about 9 min); reports/index.html and a table
	@$(BIN)/failwhale setup --browser
	$(BIN)/failwhale scenarios --out reports

clean: ## remove the virtualenv, lab data, reports and caches
	rm -rf $(VENV) .lab .pytest_cache test-artifacts reports *.egg-info

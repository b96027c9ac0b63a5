# The two commands from the README: `make run` and `make test`.
# Both create .venv from a bare python3 on first use and reuse it afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
BEFORE ?=

.PHONY: run test test-floor lint typecheck pytest bench bench-classifieds clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m examples --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests examples benchmarks conftest.py

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# `make bench BEFORE=<git revision>` also measures livepages from that revision
# in the fan-out benchmark, side by side with this checkout.
# The stream, middleware and server-matrix tests again on the lowest Starlette that
# pyproject.toml allows (CI runs this after `make test`).
FLOOR_VENV := .venv-floor
STARLETTE_FLOOR := $(shell sed -n 's/.*"starlette>=\([0-9.]*\)".*/\1/p' pyproject.toml)
test-floor: $(STAMP)
	test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet -e '.[dev]' 'starlette~=$(STARLETTE_FLOOR).0'
	$(FLOOR_VENV)/bin/python -c 'import starlette; print("starlette", starlette.__version__)'
	$(FLOOR_VENV)/bin/pytest -q tests/test_middleware.py tests/test_live.py tests/test_actions.py \
		tests/test_routing.py tests/test_mounting.py tests/test_reports.py tests/test_server_matrix.py

bench: $(STAMP)
	LIVEPAGES_BENCH_BEFORE=$(BEFORE) $(BIN)/python -m benchmarks

# The classifieds load test: 500 virtual users for 60 s on one app process, then on two
# on NATS (benchmarks/README.md). `make bench-classifieds ARGS='--users 100'` changes it.
ARGS ?=
bench-classifieds: $(STAMP)
	$(BIN)/python -m benchmarks.classifieds_load --processes 1,2 $(ARGS)

clean:
	rm -rf $(VENV) $(FLOOR_VENV)

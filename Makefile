# The two commands from the README: `make run` and `make test`.
# Both create .venv from a bare python3 on first use and reuse it afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
BEFORE ?=

.PHONY: run test lint typecheck pytest bench clean

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
bench: $(STAMP)
	LIVEPAGES_BENCH_BEFORE=$(BEFORE) $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV)

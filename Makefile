# epi-ml: `make demo` and `make test` are all a new machine needs (Python 3.11+ and make).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export EPI_ML_HOME ?= $(CURDIR)/.epi-ml
HOST   ?= 127.0.0.1

.PHONY: setup demo test bench serve clean help

help:
	@echo "make demo   set up .venv, simulate the twin's campaign, run the pipeline, serve the UIs"
	@echo "make test   set up .venv with dev extras and run the whole test suite"
	@echo "make bench  run the benchmarks (numbers go to bench-out/ and docs/benchmarks.md)"
	@echo "make clean  remove .venv and the demo home ($(EPI_ML_HOME))"

# Re-install when pyproject.toml changes. torch is not pinned: pip takes the build this machine has.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/epi-ml init
	$(BIN)/epi-ml demo --host $(HOST)

serve: setup
	$(BIN)/epi-ml serve --host $(HOST)

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/run_all.py --out bench-out

clean:
	rm -rf $(VENV) $(EPI_ML_HOME)

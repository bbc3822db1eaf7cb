# The book's two commands: `make book` and `make test`. Each does all set-up on its own.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: book test setup system browser-deps lint unit chapters-ci nbval html-ci browser clean

## make book: set up, run every chapter on params/default.yaml, build _build/html
book: setup
	$(BIN)/python -m vaetone.book execute --params params/default.yaml --out _build/executed/default
	$(BIN)/python -m vaetone.book build --executed _build/executed/default

## make test: set up, ruff, unit tests, then every chapter on params/ci.yaml, nbval, strict book build
test: setup lint unit chapters-ci nbval html-ci browser

setup: $(STAMP) system

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

system:
	@bash scripts/install_system.sh

browser-deps:
	@bash scripts/install_system.sh --with-browser

lint: setup
	$(BIN)/ruff check vaetone tests scripts
	$(BIN)/ruff format --check vaetone tests scripts

## unit tests in parallel, one process per core, each torch on one thread (no oversubscription)
unit: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -n auto

chapters-ci: setup
	$(BIN)/python -m vaetone.book execute --params params/ci.yaml --out _build/executed/ci

## nbval re-executes the chapters: their kernels read the rest of the preset from the copy the pipeline wrote
nbval: chapters-ci
	VAETONE_PRESET=$(CURDIR)/_build/executed/ci/preset.yaml \
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax _build/executed/ci/chapters -o testpaths=

html-ci: chapters-ci
	$(BIN)/python -m vaetone.book build --executed _build/executed/ci --html _build/ci --strict

browser: html-ci browser-deps
	$(BIN)/python -m pytest tests/browser --book-html _build/ci/html --book-src _build/executed/ci/book_src

clean:
	rm -rf _build

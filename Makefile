# Tapescope: `make run` (dashboard, offline replay when Binance cannot be reached),
# `make test` (the whole suite), `make bench`, `make lint`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test bench lint system-deps screenshot clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt requirements-clients.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-clients.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(BIN)/python -m app $(ARGS)

system-deps:
	bash scripts/install-system-deps.sh

test: $(VENV)/.dev system-deps
	$(BIN)/python -m pytest $(ARGS)

bench: $(VENV)/.dev
	bash bench/run_all.sh

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

screenshot: $(VENV)/.dev system-deps
	$(BIN)/python scripts/screenshot.py docs/dashboard.png

clean:
	rm -rf $(VENV)

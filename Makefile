# Two entry points: `make repro` (the demo pipeline) and `make test` (the test suite).
# Both create .venv with pinned dependencies on first use; only python3 and pip are needed.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch would pull the CUDA build.
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

.PHONY: install repro test
install: $(BIN)/.installed

repro: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest $(PYTEST_ARGS)

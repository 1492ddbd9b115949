# Overshadow Lab: two commands for a fresh machine.
#   make book   build the executed book into _build/html
#   make test   lint, unit tests, every chapter under nbval, strict book build
# Both create .venv on first use; later runs reinstall only when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
NBVAL_DIR := _build/nbval
JB_FLAGS := -W -n --keep-going
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export TQDM_MININTERVAL := 5
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test lint unit chapters notebooks install clean help

help:
	@echo "make book   build the executed book into _build/html"
	@echo "make test   everything that guards the project (what CI runs)"
	@echo "make notebooks   regenerate the Colab notebooks after editing a chapter"

install: $(STAMP)

$(STAMP): pyproject.toml tools/install_torch.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install_torch.py
	$(BIN)/python -m pip install -q -e ".[book,test]"
	@rm -f $(VENV)/.installed-*
	@touch $@

book: $(STAMP)
	$(BIN)/python tools/notebooks.py invalidate
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "book: open _build/html/index.html"

notebooks: $(STAMP)
	$(BIN)/python tools/notebooks.py colab

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/ruff check . && \
	$(BIN)/python tools/notebooks.py colab --check && \
	$(BIN)/python tools/notebooks.py stage $(NBVAL_DIR) && \
	$(BIN)/python -m pytest -p no:cacheprovider -p tools.nbval_cache --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 --durations=15 tests $(NBVAL_DIR) && \
	$(BIN)/jupyter-book build . $(JB_FLAGS) && \
	echo "make test: passed in $$(( $$(date +%s) - start )) s"

clean:
	rm -rf _build

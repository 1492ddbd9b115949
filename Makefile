# Overshadow Lab: two commands for a fresh machine.
#   make book   build the executed book into _build/html
#   make test   lint, unit tests, every chapter under nbval, strict book build
# Both create .venv on first use; later runs reinstall only when pyproject.toml changes.
#
# Chapters are executed the way a reader runs them: from the built wheel, installed into an
# environment OUTSIDE the checkout ($(INSTALLED)), with no data folder beside it and no
# OVERSHADOW_DATA. That environment borrows the dependencies of .venv through a .pth line (so
# nothing is downloaded twice) but holds its own non-editable copy of overshadow_lab. nbval's run
# is stored in the book's execution cache (tools/nbval_cache.py), so the strict book build that
# follows reuses it and no chapter executes twice.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
INSTALLED ?= $(or $(TMPDIR),/tmp)/overshadow-lab-installed-$(shell echo "$(CURDIR)" | sha1sum | cut -c1-8)
WHEEL_DIR := _build/wheel
JB_FLAGS := -W -n --keep-going
PYTEST := -p no:cacheprovider -rs --durations=10
# Tests and chapters run on one pytest-xdist worker per core this process may use
# (`make TEST_JOBS=1 test` runs them one at a time). Each worker keeps to one thread
# (tests/conftest.py; OMP_NUM_THREADS for the chapters' kernels): most tests and cells keep one
# core busy, and two pools of threads on two cores wait on each other. On 2 cores this took the
# unit tests from 540 to 330 s and the chapters from 520 to 411 s. A chapter goes whole to one
# worker, its cells in order in one kernel, and chapters that share results go to the same
# worker one after another (`tools/notebooks.py stage` writes the groups, nbval_groups applies
# them).
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
PARALLEL := $(if $(filter-out 0 1,$(TEST_JOBS)),-n $(TEST_JOBS),)
ONE_THREAD := $(if $(PARALLEL),OMP_NUM_THREADS=1 MKL_NUM_THREADS=1,)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export TQDM_MININTERVAL := 5
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test lint unit chapters installed notebooks install clean help

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

# The wheel, installed outside the checkout: what `pip install` gives a reader.
installed: $(STAMP)
	@rm -rf $(WHEEL_DIR) $(INSTALLED)
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w $(WHEEL_DIR) .
	$(BIN)/python -m venv --without-pip $(INSTALLED)
	@site=$$($(INSTALLED)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > $$site/_overshadow_dependencies.pth; \
	$(BIN)/python -m pip install -q --no-deps --no-index --target $$site $(WHEEL_DIR)/*.whl; \
	cd $(INSTALLED) && env -u OVERSHADOW_DATA bin/python -c "import overshadow_lab as o, sys; \
	  assert '$(CURDIR)' not in o.__file__, o.__file__; print('chapters run from', o.__file__)"

# Every chapter that changed, executed once under nbval from the installed wheel.
chapters: installed
	$(BIN)/python tools/notebooks.py stage $(INSTALLED)/chapters
	cd $(INSTALLED)/chapters && if [ "$$(cat staged.json)" != "[]" ]; then \
	  env -u OVERSHADOW_DATA OVERSHADOW_BOOK_ROOT=$(CURDIR) OVERSHADOW_RESULTS=$(CURDIR)/_build/results \
	    PYTHONPATH=$(CURDIR)/tools $(ONE_THREAD) $(INSTALLED)/bin/python -m pytest $(PYTEST) \
	    $(if $(PARALLEL),$(PARALLEL) --no-loadscope-reorder,) -c /dev/null \
	    --rootdir . -p nbval_cache -p nbval_groups --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=900 $$(cat order.txt); fi

# Sphinx re-reads only the sources whose files changed: a chapter executed again because the
# package or its recorded data changed would keep its old page, so then every page is rebuilt.
REBUILD = $$(test "$$(cat $(INSTALLED)/chapters/staged.json 2>/dev/null)" = "[]" || echo --all)

book: chapters
	$(BIN)/jupyter-book build . $(JB_FLAGS) $(REBUILD)
	$(BIN)/python tools/check_html.py _build/html
	@echo "book: open _build/html/index.html"

notebooks: $(STAMP)
	$(BIN)/python tools/notebooks.py colab

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST) $(if $(PARALLEL),$(PARALLEL) --dist worksteal,) tests

test: $(STAMP)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint && \
	$(BIN)/python tools/notebooks.py colab --check && \
	$(MAKE) --no-print-directory unit chapters && \
	$(BIN)/jupyter-book build . $(JB_FLAGS) $(REBUILD) && \
	$(BIN)/python tools/check_html.py _build/html && \
	echo "make test: passed in $$(( $$(date +%s) - start )) s"

clean:
	rm -rf _build $(INSTALLED)

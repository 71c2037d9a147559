# The two commands of the README, and the chores behind them.
#   make reproduce   run the main job on the built-in phantom data
#   make test        run every test
# Both create .venv and install into it on first use; later runs reuse it.

SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    ?= runs/smoke

.PHONY: install test reproduce check-sync sync readme docs clean

install: $(STAMP)

$(STAMP): settings.ini setup.py constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "ich_nb needs Python 3.10 or newer; set PYTHON=python3.x")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing ich_nb and its dependencies into $(VENV) (a few minutes, once)..."
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

# Two pytest workers, one test file each at a time, the longest files first (tests/conftest.py); one torch
# thread each, so that the two share the machine's cores instead of spinning against each other.
TEST_WORKERS ?= 2
test: $(STAMP) check-sync
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# nbdev's invariants: ich_nb/ is what nbdev_export makes of nbs/, and notebooks are clean.
check-sync: $(STAMP)
	@before=$$(find nbs ich_nb -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' | sort | xargs sha1sum); \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean; \
	after=$$(find nbs ich_nb -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' | sort | xargs sha1sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev_export / nbdev_clean changed these files: ich_nb/ was out of step with nbs/ or a notebook was not clean."; \
	  diff <(echo "$$before") <(echo "$$after") | sed -n 's/^> [0-9a-f]*  /  /p'; \
	  echo "Review the changes (git diff), commit them, and run make test again."; exit 1; \
	fi; echo "nbdev: ich_nb/ matches nbs/ and the notebooks are clean."

# The paper's series on the built-in phantom (the smoke profile), into runs/smoke.
reproduce: $(STAMP)
	$(BIN)/ich-nb reproduce --profile smoke --run-dir $(RUN)

sync: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

readme: $(STAMP)
	tools/readme.sh

# The documentation site in _docs/: nbdev_docs where quarto is installed, else nbconvert over nbdev's _proc/
# (offline). DOCS_RUN: the run folder whose executed paper series and report the site shows
# (default: runs/workshop, else runs/smoke, where they exist).
DOCS_RUN ?=
docs: $(STAMP)
	$(BIN)/python tools/docs.py $(if $(DOCS_RUN),--run $(DOCS_RUN))

clean:
	rm -rf $(VENV) _docs _proc .pytest_cache ich_nb.egg-info

# Two commands on a fresh machine with Python 3.11:
#   make demo   -> venv + install + DP synthesis of the bundled dataset with its report
#                  (experiments/demo/index.html)
#   make test   -> the whole test suite
#   make docs   -> the API reference site, warnings as errors (docs/_build/html/index.html)
#   make test-min -> the suite (less the slow tests) on the declared minimum versions
PYTHON ?= python3.11
VENV ?= .venv
CONSTRAINTS ?= requirements/cpu.txt
PIP_CONSTRAINT_FLAG = $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
BIN = $(VENV)/bin
STAMP = $(VENV)/.nhssynth-installed
DOCS_STAMP = $(VENV)/.nhssynth-docs-installed
PYTEST_ARGS ?=
# `make test-min`: a second venv with every runtime dependency at the lower bound that
# pyproject.toml declares (requirements/min.txt pins them exactly).
VENV_MIN ?= .venv-min
MIN_CONSTRAINTS ?= requirements/min.txt
MIN_STAMP = $(VENV_MIN)/.nhssynth-installed
# wheels only for the compiled packages: an old release must never fall back to a source build
MIN_ONLY_BINARY = numpy,pandas,scipy,scikit-learn,matplotlib,contourpy,pyyaml,torch

.PHONY: install demo test check-min test-min examples bench docs clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=python3 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINT_FLAG) -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

# The `docs` extra (Sphinx and friends, pinned) on top of the same venv.
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINT_FLAG) -e ".[test,docs]"
	@touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/nhssynth pipeline -c demo --save-config

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The declared minimums (requirements/min.txt == the lower bounds in pyproject.toml) in their
# own venv. Only the tests not marked slow: the whole suite, slow tests included, already runs
# at current versions in `make test`; this checks that the lower bounds are true.
$(MIN_STAMP): pyproject.toml $(MIN_CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=python3 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_MIN)/bin/python -m pip install --quiet --only-binary=$(MIN_ONLY_BINARY) -c $(MIN_CONSTRAINTS) -e ".[test]"
	@touch $(MIN_STAMP)

check-min:
	@$(PYTHON) requirements/check_min.py

test-min: check-min $(MIN_STAMP)
	$(VENV_MIN)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

examples: $(STAMP)
	@for f in examples/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(VENV_MIN) build dist *.egg-info out docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst

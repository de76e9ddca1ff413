PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit demo bench bench-compare clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check tinker tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict tinker

unit: $(STAMP)
	$(PY) -m pytest

test: lint typecheck unit

demo: $(STAMP)
	$(PY) -m tinker.demo

bench: $(STAMP)
	$(PY) -m benchmarks

bench-compare: $(STAMP)
	$(PY) -m benchmarks --compare

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

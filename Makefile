PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-slow lint typecheck unit demo bench bench-compare official-venvs official-capture cookbook-venv clean

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

# Tests marked slow (but not opt-in) are left to `make test-slow`.
unit: $(STAMP)
	$(PY) -m pytest -m "not slow or optin"

test: lint typecheck unit

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not optin"

demo: $(STAMP)
	$(PY) -m tinker.demo

bench: $(STAMP)
	$(PY) -m benchmarks

bench-compare: $(STAMP)
	$(PY) -m benchmarks --compare

# The unmodified official SDKs 0.38.0 and 0.5.1 in their own venvs (default .venvs/, or
# $TINKER_OFFICIAL_VENVS), for the opt-in tests (TINKER_OPTIN=1) and bench-compare.
official-venvs:
	$(PYTHON) scripts/official_venvs.py

# Regenerate tests/fixtures/official-*: what the official SDKs send, captured.
official-capture:
	$(PYTHON) scripts/official_capture.py

# tinker-cookbook 0.6.1 next to this checkout's tinker-sync in .venvs/cookbook (or
# $TINKER_COOKBOOK_VENV), for the opt-in cookbook runs (TINKER_OPTIN=1).
cookbook-venv:
	$(PYTHON) scripts/cookbook_venv.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

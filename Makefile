PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The minimum supported Python, for `make test-py310` (empty when none is installed).
PYTHON310 ?= $(shell for p in $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 $$(command -v python3.10); do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV310 := .venv310
STAMP310 := $(VENV310)/.installed
# A plain path in a .pth file (compat mode), not an import hook: type checkers such as mypy
# then find `tinker` from any directory.
EDITABLE := --config-settings editable_mode=compat -e '.[dev]'

.PHONY: install test test-slow test-py310 python310 lint typecheck unit demo bench bench-compare official-venvs official-capture cookbook-venv clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(EDITABLE)
	touch $(STAMP)

$(STAMP310): pyproject.toml Makefile
	@test -n "$(PYTHON310)" || { echo "no Python 3.10 interpreter found (set PYTHON310=...)"; exit 1; }
	test -x $(VENV310)/bin/python || $(PYTHON310) -m venv $(VENV310)
	$(VENV310)/bin/python -m pip install --quiet --upgrade pip
	$(VENV310)/bin/python -m pip install --quiet $(EDITABLE)
	touch $(STAMP310)

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

# The SDK's unit tests and the first-hour regression programs under the minimum supported
# Python. Left out: the embedded server's numpy compute (tests/unit/local, the same on every
# version) and the check that docs/api.md is what the generator renders (pydoc's text of
# builtins differs between versions; it is generated with the development Python).
test-py310: $(STAMP310)
	$(VENV310)/bin/python -m pytest -m "not slow or optin" tests/unit tests/reliability/test_first_hour.py \
		--ignore=tests/unit/local --deselect tests/unit/docs/test_api_reference.py::test_api_md_is_up_to_date

# The Python 3.10 interpreter test-py310 uses (nothing when none is installed).
python310:
	@echo "$(PYTHON310)"

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
	rm -rf $(VENV) $(VENV310) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

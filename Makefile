# The README's two commands are `make run` and `make test`; each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export PYDANTIC_AI_NO_BANNER := 1

.PHONY: run test lint format bench bench-full install install-dev clean

$(UV):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed-run: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --no-dev --inexact --quiet
	touch $@

$(VENV)/.installed-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

run: install  ## Install and start the server on the embedded defaults (SQLite, demo model)
	$(VENV)/bin/agentstream serve

test: install-dev  ## Install and run the whole test suite
	$(VENV)/bin/pytest -q

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev  ## Quick benchmark profile; writes docs/benchmarks.md
	$(PY) -m bench

bench-full: install-dev
	$(PY) -m bench --full

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# The two quickstart commands are `make demo` and `make test`; both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test e2e lint unit bench system-deps venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

venv: $(STAMP)

# apt packages the suite needs (Docker engine, debootstrap, lddtree, libtree, gcc); idempotent.
system-deps:
	bash tools/setup-system.sh

demo: $(STAMP) system-deps
	$(PY) tools/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check imagesmith tests bench tools
	$(VENV)/bin/ruff format --check imagesmith tests bench tools
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q

test: $(STAMP) system-deps lint
	$(PY) -m pytest -q

# The whole embedded default set built for real (JAX, TensorFlow, torch from its own index too); not in CI.
e2e: $(STAMP) system-deps
	$(PY) -m pytest -q -m e2e -s tests/e2e

bench: $(STAMP) system-deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache

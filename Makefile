# Two commands: `make run` starts a single-node cluster, `make test` runs the suite. Both set up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint unit e2e bench clean

setup: debian $(STAMP)
	$(BIN)/pyk8s images seed

debian:
	@scripts/install-debian-packages

# Reinstall only when the project's metadata changes, so a second `make setup` takes seconds.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: setup
	$(BIN)/pyk8s server $(ARGS)

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

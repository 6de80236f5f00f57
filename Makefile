# Siyu — `make demo` runs the console with a demo brand; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format assets clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Siyu needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

assets: node_modules/.package-lock.json
	$(BIN)/python scripts/vendor_assets.py

demo: $(VENV)/.installed assets
	$(BIN)/siyu demo

test: $(VENV)/.installed-test assets
	$(BIN)/ruff check src
	$(BIN)/ruff format --check src
	@echo "== tests on SQLite =="
	$(BIN)/pytest
	@if [ -n "$$SIYU_TEST_DATABASE_URL" ]; then \
		echo "== tests on $$SIYU_TEST_DATABASE_URL =="; \
		SIYU_DATABASE_URL="$$SIYU_TEST_DATABASE_URL" $(BIN)/pytest; \
	fi

lint:
	$(BIN)/ruff check src
	$(BIN)/ruff format --check src

format:
	$(BIN)/ruff check --fix src
	$(BIN)/ruff format src

clean:
	rm -rf $(VENV) node_modules src/siyu/console/static/vendor

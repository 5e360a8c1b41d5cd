# Sandcloud: `make run` starts the whole site; `make test` runs the whole suite. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test test-postgres deps system services images migrate bench clean

$(VENV)/.installed: pyproject.toml
	@echo "==> installing Python packages into $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e ".[test]"
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing front-end packages from the npm registry"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

system:
	@bash ops/system-deps.sh

deps: system $(VENV)/.installed node_modules/.installed
	@test -f static/build/@codemirror/legacy-modes/mode/dockerfile.js || npm run build --silent

services: deps
	@bash ops/services.sh >/dev/null

images: services
	@$(PY) manage.py sandbox images

migrate: deps
	@$(PY) manage.py migrate --noinput -v 0

run: deps
	@bash ops/run.sh

test: deps services images
	@bash ops/test.sh

test-postgres: deps services images
	@WITH_POSTGRES=1 bash ops/system-deps.sh
	@bash ops/test.sh --postgres

bench: services images migrate
	@$(PY) manage.py bench sandbox --runs 20 --json

clean:
	rm -rf $(VENV) node_modules var

# Concord: `make run` starts the demo (web + worker), `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# Local use: DEBUG on, SQLite + filesystem broker under var/ unless DATABASE_URL /
# CELERY_BROKER_URL say otherwise.
export DEBUG ?= 1

.PHONY: run test install install-dev lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) load_demo
	@echo "Concord: http://127.0.0.1:8000/  (Ctrl-C stops the web server and the worker)"
	@# The trap is reset first: `kill 0` signals this shell too, and a trap that fired again
	@# would flood the worker with signals and leave it running.
	@trap 'trap - INT TERM; kill 0' INT TERM; \
	$(BIN)/celery -A config worker --pool=prefork --concurrency=2 --loglevel=INFO & \
	$(MANAGE) runserver 127.0.0.1:8000 --noreload & \
	wait

test: install-dev
	@test -x /usr/bin/chromium || { echo "Installing Chromium for the browser tests"; \
		apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var artifacts

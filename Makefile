# Concord: `make run` starts the demo (web + worker), `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# The port `make run` serves on: make run PORT=8001
PORT ?= 8000
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

# The dev install adds the Python client (client/, its own distribution) for its tests.
$(VENV)/.installed-dev: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]" -e "./client[pandas,datasets]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Static files as production serves them: hashed names and gzip copies, cached for good.
run: export CONCORD_STATIC_COLLECTED = 1
run: install
	@# Before anything starts: runserver on a taken port would fail and leave the worker running.
	@$(BIN)/python -c "import socket; s = socket.socket(); \
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $(PORT)))" \
		2>/dev/null || { echo "Port $(PORT) is in use: stop what serves it, or make run PORT=8001"; exit 1; }
	$(MANAGE) migrate --noinput
	$(MANAGE) load_demo
	$(MANAGE) collectstatic --noinput --verbosity 0
	@echo "Concord: http://127.0.0.1:$(PORT)/  (Ctrl-C stops the web server and the worker)"
	@# Ctrl-C reaches the worker itself (it shuts down on SIGINT; a second signal on top made
	@# it hang), but not runserver, which a background job starts with SIGINT ignored: the
	@# trap stops that one. A TERM (kill, docker stop) stops both.
	@trap 'trap - INT TERM; kill $$web 2>/dev/null; wait' INT; \
	trap 'trap - INT TERM; kill $$web $$worker 2>/dev/null; wait' TERM; \
	$(BIN)/celery -A config worker --pool=prefork --concurrency=2 --loglevel=INFO & worker=$$!; \
	$(MANAGE) runserver 127.0.0.1:$(PORT) --noreload & web=$$!; \
	wait

test: install-dev
	@test -x /usr/bin/chromium || { echo "Installing Chromium for the browser tests"; \
		apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var artifacts

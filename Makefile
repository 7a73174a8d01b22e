# The two commands: `make run` starts the whole studio, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run setup test chromium requirements clean

run: setup
	$(BIN)/python manage.py runstudio --host $(HOST) --port $(PORT)

setup: $(VENV)/.requirements
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup

test: $(VENV)/.test-requirements chromium
	$(BIN)/python -m pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-requirements: tests/requirements.txt $(VENV)/.requirements
	$(BIN)/python -m pip install --quiet -r tests/requirements.txt
	touch $@

# Browser tests drive Debian's Chromium; install it only when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

# Regenerate the pinned requirement files after changing pyproject.toml.
requirements: $(VENV)/.requirements
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --extra test \
		-c requirements.txt -o tests/requirements.txt pyproject.toml

clean:
	rm -rf $(VENV)

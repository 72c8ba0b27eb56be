# `make run` — create .venv, install, and run the DVC pipeline on the embedded synthetic data.
# `make test` — the default test suite (what CI runs via .ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export OPENBLAS_NUM_THREADS := 1
export PYTHONHASHSEED := 0
export DVC_NO_ANALYTICS := 1
export MLFLOW_ENABLE_TELEMETRY := false
export DO_NOT_TRACK := 1
UI_PORT ?= 5000

.PHONY: install run test test-all bench ui lint format params clean serve image loadtest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,team,spark]'
	touch $(STAMP)

run: install
	dvc repro
	recops summary

test: install system
	pytest

# Debian packages the tests start for real: chromium (MLflow UI screenshots), PostgreSQL,
# Java + OpenBLAS (Spark), Prometheus (promtool, alert tests), podman/buildah/runc/debootstrap
# (container image), apache2-utils (ab). Installed only when one is missing; a package that
# cannot be installed makes its tests skip with the reason.
SYSTEM_PACKAGES := chromium postgresql openjdk-17-jre-headless libopenblas0-pthread prometheus \
	podman buildah runc debootstrap apache2-utils
.PHONY: system browser
system:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "installing Debian packages for the tests:" $$missing; \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$$SUDO apt-get install -y -qq --no-install-recommends $$missing) \
		|| echo "warning: could not install some of: $$missing; their tests will be skipped"; \
	fi
browser: system

test-all: install system
	pytest -m "not benchmark"

# -n0: benchmarks time themselves, never beside each other in parallel workers.
bench: install
	pytest tests/benchmarks -m benchmark -s -n0

# Prints http://127.0.0.1:$(UI_PORT)/#/experiments/<id>?workflowType=machine_learning (the runs view).
ui: install
	$(BIN)/recops ui --port $(UI_PORT)

# BentoML service of bentos/ on 127.0.0.1 (live mode follows the registry's champion; see README).
# exec: the BentoML arbiter replaces the shell, so Ctrl-C / SIGTERM to make's process group stops
# the server and its workers (host and port: serve.host / serve.port, PORT=... overrides).
serve: install
	exec recops serve $${PORT:+--port $$PORT}

# OCI image of the champion (podman/buildah; see README "Serving"), and a 60 s load test of a
# running service against the SLOs (URL=http://127.0.0.1:3000 by default).
image: install system
	recops bento build
	recops bento containerize

loadtest: install
	recops loadtest --url $${URL:-http://127.0.0.1:3000} --duration 60s --concurrency 10

lint: install
	ruff check src pipelines tests bentos
	ruff format --check src pipelines tests bentos
	mypy
	lint-imports  # layering contracts in pyproject.toml [tool.importlinter]

format: install
	ruff check --fix src pipelines tests bentos
	ruff format src pipelines tests bentos

params: install
	recops params

clean:
	rm -rf data/cache outputs .pytest_cache .mypy_cache .ruff_cache

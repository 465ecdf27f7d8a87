# One entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen --no-sync
PYTEST_ARGS ?=
# The session's Kafka broker for the suite (tests/support/broker.py): `local` keeps scripts/kafka-local's broker even
# while `make test` runs a Docker daemon for the container tier; `container` runs the suite on the Kafka image.
KAFKA_TEST_BROKER ?= local
export KAFKA_TEST_BROKER
# The images the container tier runs (scripts/build-images also knows `kafka`, the test broker's image).
SERVICE_IMAGES := ingest transcriber fetcher recall-sim

.PHONY: help setup lint format test test-suite test-containers test-containers-run test-kafka-container test-kafka-container-run test-unit kafka-fetch kafka-up kafka-down kafka-status demo up down logs stack-status clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The stamp makes a second `make setup` a no-op unless the lock file or a pyproject changed.
.venv/.synced: uv.lock pyproject.toml libs/common/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml | $(UV)
	$(UV) sync --frozen --all-packages
	@touch $@

setup: .venv/.synced ## create the Python environment from the lock file (idempotent)

kafka-fetch: ## download the pinned Apache Kafka jars from Maven Central (once; cached in .cache/)
	@scripts/kafka-local fetch

kafka-up: ## start a local single-node Kafka broker (KRaft) on 127.0.0.1:$${KAFKA_PORT:-9092}
	@scripts/kafka-local start

kafka-down: ## stop the local Kafka broker
	@scripts/kafka-local stop

kafka-status: ## is the local broker running?
	@scripts/kafka-local status

lint: setup ## ruff (lint + format check) and mypy (strict for libs/common)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy libs/common/src services/ingest/src services/transcriber/src services/fetcher/src services/recall_sim/src tools/cli/src tools/devkit/src

format: setup ## apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

test: setup kafka-fetch promtool lint ## lint, then the whole suite against a real Kafka broker (promtool's rule tests; the images, where Docker can run)
	@scripts/with-docker $(MAKE) --no-print-directory test-suite

# Inside scripts/with-docker: build the images when a daemon answers (the container tier runs them), then the suite.
# Without a daemon the tier skips, saying why.
test-suite: setup
	@if [[ -z "$${DOCKER_UNAVAILABLE:-}" ]] && docker info >/dev/null 2>&1; then scripts/build-images $(SERVICE_IMAGES); fi
	$(RUN) pytest $(PYTEST_ARGS)

test-containers: setup kafka-fetch ## only the container tier: start Docker if needed, build the images, run them, stop Docker
	@scripts/with-docker $(MAKE) --no-print-directory test-containers-run

test-containers-run: setup
	scripts/build-images $(SERVICE_IMAGES)
	$(RUN) pytest -m container $(PYTEST_ARGS)

KAFKA_CONTAINER_TESTS ?= tests/ingest tests/common
test-kafka-container: setup kafka-fetch ## the integration tier on the Kafka image through testcontainers (KAFKA_CONTAINER_TESTS)
	@scripts/with-docker $(MAKE) --no-print-directory test-kafka-container-run

test-kafka-container-run: setup
	scripts/build-images kafka
	KAFKA_TEST_BROKER=container $(RUN) pytest -m integration $(KAFKA_CONTAINER_TESTS) $(PYTEST_ARGS)

test-unit: setup promtool ## only the unit tier (no broker)
	$(RUN) pytest -m unit $(PYTEST_ARGS)

demo: setup kafka-fetch ## the whole pipeline end to end: a batch of recordings, live progress, a summary
	$(RUN) python scripts/demo.py

up: setup kafka-fetch ## start Kafka, the simulator (unless RECALL_API_KEY points at real Recall) and the services
	$(RUN) python scripts/stack.py up

down: ## stop everything `make up` started
	@$(if $(wildcard .venv/bin/python),.venv/bin/python scripts/stack.py down,scripts/kafka-local stop)

logs: ## follow the logs of the `make up` stack, prefixed by process
	$(RUN) python scripts/stack.py logs --follow

stack-status: ## which processes of the `make up` stack run and are ready
	$(RUN) python scripts/stack.py status

clean: ## remove the environment, caches and local broker state (keeps nothing running)
	-@scripts/kafka-local stop
	-@scripts/docker-daemon stop
	rm -rf .venv .tools .cache .pytest_cache .mypy_cache .ruff_cache

# ------------------------------------------------------------------------------------------ Kubernetes (deploy/)
.PHONY: images kube-topics kube-users kube-validate kustomize promtool

images: ## build every image here and print their sizes (starts Docker if needed, and stops what it started)
	@scripts/with-docker scripts/build-images

kube-topics: setup ## regenerate deploy/topics/ (Strimzi KafkaTopics) from the topic registry
	$(RUN) python -m deploy.topics

kube-users: setup ## regenerate deploy/users/ (Strimzi KafkaUsers with their ACLs) from the topic registry
	$(RUN) python -m deploy.users

kube-validate: setup ## render every overlay with kustomize and validate it offline (also part of make test)
	$(RUN) python -m deploy.validate

kustomize: ## install the pinned kustomize into .cache/bin (only where kubectl is missing)
	@scripts/install-kustomize

promtool: ## put promtool and prometheus (Debian's prometheus package) in .cache/bin, for the alert rules' tests
	@scripts/install-promtool

# ------------------------------------------------------------------------------------- the public contract (docs/)
.PHONY: docs

docs: setup ## regenerate docs/asyncapi.yaml and docs/schemas/*.json from the topic registry and event models
	$(RUN) python -m devkit.docs

# ------------------------------------------------------------------------------------------- measured (bench/)
.PHONY: bench
BENCH_ARGS ?=

bench: setup kafka-fetch ## benchmarks on a dedicated local broker: a table, figures in bench/results/ (BENCH_ARGS=--quick)
	$(RUN) python -m bench.run $(BENCH_ARGS)

# ---------------------------------------------------------------------------- chaos (devkit.chaos via scripts/chaos.py)
.PHONY: chaos
CHAOS_ARGS ?=

chaos: setup kafka-fetch ## a ledger run under faults, then fuzzing; ledger in var/chaos/ (CHAOS_ARGS='--recordings 100 --no-kill'; distributed: '--brokers 3 --replicas 2')
	$(RUN) python scripts/chaos.py $(CHAOS_ARGS)

# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint install broker browser unit docs deploy-check dlq dlq-show dlq-replay faults bench bench-cpu bench-db-commands bench-instructions

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

broker:
	@scripts/ensure-rabbitmq.sh

# Debian's Chromium for tests/browser (Playwright drives it; no test tool downloads a browser here)
browser:
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## make run: the whole system locally (embedded MongoDB + WAHA emulator + four services)
run: install broker
	@$(UV) run --frozen python -m local_launcher

## make test: lint, then the whole test suite (needs RabbitMQ; starts SecantusDB and the rest itself)
test: install lint broker browser
	@$(UV) run --frozen pytest

## make lint: ruff, then mypy over every package (part of make test)
lint: install
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy

## make unit: only the tests that need no broker or database
unit: install
	@$(UV) run --frozen pytest -m "not integration and not e2e"

## make docs: regenerate docs/openapi.json and docs/asyncapi.json from the code (tests fail when they drift)
docs: install
	@$(UV) run --frozen python scripts/gen_api_docs.py

## make deploy-check: validate compose.yaml, deploy/k8s and the Dockerfile (no container engine needed; part of make test)
deploy-check: install
	@$(UV) run --frozen pytest tests/deploy -m "not integration"

## make dlq: every dead-letter queue of BROKER_PREFIX (default wa) and how many messages wait in it
dlq: install
	@$(UV) run --frozen python -m fleet_devtools.dlq list

## make dlq-show QUEUE=persister.events: what is in one dead-letter queue and why (left in place)
dlq-show: install
	@test -n "$(QUEUE)" || { echo "usage: make dlq-show QUEUE=persister.events"; exit 2; }
	@$(UV) run --frozen python -m fleet_devtools.dlq show $(QUEUE)

## make dlq-replay QUEUE=persister.events [LIMIT=n]: move its messages back to the queue they came from
dlq-replay: install
	@test -n "$(QUEUE)" || { echo "usage: make dlq-replay QUEUE=persister.events [LIMIT=n]"; exit 2; }
	@$(UV) run --frozen python -m fleet_devtools.dlq replay $(QUEUE) $(if $(LIMIT),--limit $(LIMIT))

## make faults: only the fault tests (real processes; part of make test)
faults: install broker
	@$(UV) run --frozen pytest tests/faults

## make bench: the benchmarks beside raw baselines; prints a table and writes docs/benchmarks.md (ARGS=--quick for a short run)
bench: install broker
	@$(UV) run --frozen python -m bench $(ARGS)

## make bench-cpu: where end to end's CPU goes, per process, per message written and per page read
bench-cpu: install broker
	@$(UV) run --frozen python -m bench.cpu_split $(ARGS)

## make bench-db-commands: MongoDB commands per send, by collection and command (ARGS="--concurrency 20")
bench-db-commands: install broker
	@$(UV) run --frozen python -m bench.db_commands $(ARGS)

## make bench-instructions: benchmark 1 in CPU instructions (valgrind's callgrind), steady on a busy machine
bench-instructions: install broker
	@$(UV) run --frozen python -m bench.instructions

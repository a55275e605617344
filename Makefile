# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run test install broker unit

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

broker:
	@scripts/ensure-rabbitmq.sh

## make run: the whole system locally (embedded MongoDB + WAHA emulator + four services)
run: install broker
	@$(UV) run --frozen python -m local_launcher

## make test: the whole test suite (needs RabbitMQ; starts SecantusDB and the rest itself)
test: install broker
	@$(UV) run --frozen pytest

## make unit: only the tests that need no broker or database
unit: install
	@$(UV) run --frozen pytest -m "not integration and not e2e"

"""Issue 21: `make run` says "running" only when every service is ready, and otherwise which is not and why."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from fleet_devtools.localdev import free_port
from local_launcher.readiness import NotReady, Verdict, report
from local_launcher.stack import DEFAULT_PORTS, SERVICE_MODULES, Stack
from local_launcher.throwaway import launched, throwaway_config

BOUND = 3.0
STARTUP = 45.0  # four services and the emulator importing at once on a busy two-core machine


def test_make_run_refuses_a_broker_that_never_answers_amqp(silent_broker_url, tmp_path):
    env = {
        **os.environ,
        "RABBITMQ_URL": silent_broker_url,
        "BROKER_CHECK_TIMEOUT": str(BOUND),
        "WAHA_FLEET_STATE_DIR": str(tmp_path),
        **{f"{name.upper().replace('-', '_')}_PORT": str(free_port()) for name in DEFAULT_PORTS},
    }
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "local_launcher"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert "no AMQP handshake at 127.0.0.1:" in done.stdout, done.stdout
    assert "running" not in done.stdout
    assert time.monotonic() - started < BOUND + 10


@pytest.mark.e2e
def test_a_service_that_is_up_but_not_ready_is_named_with_its_reason_and_log(silent_broker_url, tmp_path):
    config = throwaway_config(silent_broker_url, tmp_path)
    config.ready_timeout = BOUND
    stack = Stack(config)
    started = time.monotonic()
    try:
        with pytest.raises(NotReady) as caught:
            stack.start()
        took = time.monotonic() - started
    finally:
        stack.stop()
    assert took < STARTUP + BOUND
    text = str(caught.value)
    assert text.startswith(f"not ready after {BOUND:g} s:")
    for name in SERVICE_MODULES:  # each one, with what its /readyz said and where its log is
        line = next(line for line in text.splitlines() if line.startswith(f"  {name}: "))
        assert "/readyz answers 503, failing: " in line and ("rabbitmq" in line or "broker" in line), line
        assert f"log: {tmp_path / f'{name}.log'}" in text


def test_the_report_quotes_the_last_warning_of_the_service_log(tmp_path):
    log = tmp_path / "gateway.log"
    log.write_text(
        "2026-01-01 10:00:00,000 WARNING fleet_shared.connect gateway: RabbitMQ not usable (attempt 1: TimeoutError())\n"
        "2026-01-01 10:00:01,000 INFO uvicorn still serving\n"
    )
    text = report([Verdict("gateway", False, "/readyz answers 503, failing: rabbitmq", log)], 30)
    assert text.splitlines() == [
        "not ready after 30 s:",
        "  gateway: /readyz answers 503, failing: rabbitmq",
        "    its last warning: 2026-01-01 10:00:00,000 WARNING fleet_shared.connect gateway: RabbitMQ not usable (attempt 1: TimeoutError())",
        f"    log: {log}",
    ]


@pytest.mark.e2e
@pytest.mark.integration
def test_start_returns_only_once_every_service_is_ready(rabbitmq_url, tmp_path):
    with launched(throwaway_config(rabbitmq_url, tmp_path), rabbitmq_url) as stack:
        for name in SERVICE_MODULES:  # at once, no waiting: start() already did
            r = httpx.get(f"{stack.url(name)}/readyz", timeout=5)
            assert r.status_code == 200, (name, r.text)

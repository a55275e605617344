"""Issue 21: every broker check gives up in bounded time, naming the cause and the fix.

The "broker" that hung `make run` for two hours is played by `silent_broker_url`: it takes the TCP
connection and never answers the AMQP handshake.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet_devtools.broker_check import BrokerUnreachable, NothingListens, PluginMissing, check
from fleet_devtools.localdev import free_port

ROOT = Path(__file__).resolve().parents[3]
BOUND = 2.0  # the timeout the checks below are given
SLACK = 8.0  # a Python start-up and an import of aio-pika on a busy two-core machine


def run(args: list[str], rabbitmq_url: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "RABBITMQ_URL": rabbitmq_url, "BROKER_CHECK_TIMEOUT": str(BOUND)}
    started = time.monotonic()
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def silent_cause(url: str) -> re.Pattern:
    port = re.search(r":(\d+)/", url).group(1)  # type: ignore[union-attr]
    return re.compile(rf"no AMQP handshake at 127\.0\.0\.1:{port} within {BOUND:g} s")


async def test_a_broker_that_never_answers_amqp_is_given_up_on_within_the_timeout(silent_broker_url):
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable, match=silent_cause(silent_broker_url)) as caught:
        await check(silent_broker_url, timeout=BOUND)
    assert time.monotonic() - started < BOUND + 1
    assert "rabbitmq-server -detached" in str(caught.value)  # and how to fix it


async def test_nothing_listening_says_how_to_start_a_broker():
    with pytest.raises(NothingListens, match="start one with `rabbitmq-server -detached`"):
        await check(f"amqp://guest:guest@127.0.0.1:{free_port()}/", timeout=BOUND)


@pytest.mark.integration
async def test_the_real_broker_passes(rabbitmq_url):
    await check(rabbitmq_url, timeout=BOUND)


@pytest.mark.integration
async def test_a_refused_user_is_named(rabbitmq_url):
    wrong = re.sub(r"//[^@/]*@", "//nobody:wrong@", rabbitmq_url)
    with pytest.raises(BrokerUnreachable, match="refused user 'nobody'"):
        await check(wrong, timeout=BOUND)


@pytest.mark.integration
async def test_a_missing_exchange_plugin_names_the_plugin_to_enable(rabbitmq_url):
    # The broker here has the consistent-hash plugin; an exchange type no plugin provides fails the same way.
    with pytest.raises(PluginMissing, match="rabbitmq-plugins enable"):
        await check(rabbitmq_url, timeout=BOUND, exchange_type="x-fleet-no-such-type")


def test_ensure_rabbitmq_gives_up_on_a_silent_broker_and_says_why(silent_broker_url):
    for args in (["scripts/ensure-rabbitmq.sh"], ["scripts/ensure-rabbitmq.sh", "--start"]):
        done, took = run(args, silent_broker_url)
        assert done.returncode == 1, done
        assert silent_cause(silent_broker_url).search(done.stderr), done.stderr
        assert "starting it" not in done.stdout  # something holds the port: starting a second broker cannot help
        assert took < 2 * BOUND + SLACK  # --start checks twice


@pytest.mark.integration
def test_ensure_rabbitmq_passes_on_the_real_broker(rabbitmq_url):
    done, took = run(["scripts/ensure-rabbitmq.sh"], rabbitmq_url)
    assert done.returncode == 0, done.stderr
    assert took < SLACK


def test_the_dlq_cli_gives_up_on_a_silent_broker_and_says_why(silent_broker_url):
    done, took = run([sys.executable, "-m", "fleet_devtools.dlq", "list"], silent_broker_url)
    assert done.returncode == 1, done
    assert silent_cause(silent_broker_url).search(done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert took < BOUND + SLACK

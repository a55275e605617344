"""`make run`: start everything locally in the foreground; Ctrl-C or SIGTERM stops it all."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from fleet_devtools.broker_check import BrokerUnreachable, check, configured_timeout, quiet_client_logs

from . import secrets as dev_secrets
from .readiness import NotReady
from .stack import DEFAULT_PORTS, Stack, StackConfig
from .tokens import make_token

STATE_DIR = Path(os.environ.get("WAHA_FLEET_STATE_DIR", ".local"))
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


def say(text: str) -> None:
    print(text, flush=True)


def build_config() -> StackConfig:
    secrets = dev_secrets.load_or_create(STATE_DIR / "dev-secrets.env")
    env = {
        "ENVIRONMENT": os.environ.get("ENVIRONMENT", "dev"),
        "RABBITMQ_URL": os.environ.get("RABBITMQ_URL", DEFAULT_RABBITMQ_URL),
        # A local run's webhooks go to local receivers (http://127.0.0.1:…).
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": os.environ.get("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
        # Settings given in the environment win over the generated dev keys.
        **{name: os.environ.get(name) or value for name, value in secrets.items()},
    }
    return StackConfig(
        env=env,
        ports={name: int(os.environ.get(f"{name.upper().replace('-', '_')}_PORT", port)) for name, port in DEFAULT_PORTS.items()},
        mongodb_url=os.environ.get("MONGODB_URL") or None,
        mongo_storage=str(STATE_DIR / "mongodb"),
        waha_url=os.environ.get("WAHA_URL") or None,
        # As NOWEB runs: no store unless a session enables it (the orchestrator does, docs/sessions.md).
        # A session paired anew gets a synced history (30 chats of 20 messages), which the history
        # import brings in: a realistic inbox on first connect (WAHA_EMULATOR_SEED_HISTORY=0: none).
        emulator_args=["--state-file", str(STATE_DIR / "waha-emulator-sessions.json"), "--store-default", "off",
                       "--seed-history", os.environ.get("WAHA_EMULATOR_SEED_HISTORY", "30")],
        log_dir=STATE_DIR / "logs",
    )


def print_welcome(stack: Stack) -> None:
    secret = stack.config.env["JWT_SECRET"]
    gateway = stack.url("gateway")
    say("")
    say("waha-fleet is running.")
    say(f"  gateway (REST + OpenAPI at /docs)  {gateway}")
    say(f"  webhook-ingest                      {stack.url('webhook-ingest')}/webhooks/waha")
    say(f"  session-orchestrator (ops only)     {stack.url('session-orchestrator')}/readyz")
    say(f"  persister (ops only)                {stack.url('persister')}/readyz")
    say(f"  webhook-dispatcher (ops only)       {stack.url('webhook-dispatcher')}/readyz")
    say(f"  WAHA                                {stack.waha_url}{'' if stack.config.waha_url else '  (emulator; control API at /_emulator)'}")
    say(f"  MongoDB                             {stack.env['MONGODB_URL']}")
    say(f"  logs                                {stack.config.log_dir}/")
    say("")
    say("Tokens (valid 30 days):")
    say(f"  export ALICE={make_token(secret, 'alice')}")
    say(f"  export BOB={make_token(secret, 'bob')}")
    say(f"  export ADMIN={make_token(secret, 'admin', admin=True)}")
    say(f"  export GW={gateway} WAHA={stack.waha_url}")
    say("")
    say("Try: curl -s -H \"Authorization: Bearer $ALICE\" $GW/api/v1/waha/status   (README has the whole walk-through)")
    say("Ctrl-C stops everything.")


def main() -> int:
    config = build_config()
    quiet_client_logs()
    try:
        asyncio.run(check(config.env["RABBITMQ_URL"], timeout=configured_timeout()))
    except BrokerUnreachable as exc:
        say(f"RabbitMQ is not usable: {exc}.")
        return 1
    stack = Stack(config)
    stopping = False

    def request_stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        say("starting: embedded MongoDB, WAHA emulator, persister, session-orchestrator, webhook-ingest, gateway, webhook-dispatcher ...")
        stack.start(say)
        print_welcome(stack)
        while not stopping:
            stack.supervise_once(say)
            time.sleep(0.5)
    except NotReady as exc:
        say(f"waha-fleet is not running: {exc}")
        return 1
    except (RuntimeError, TimeoutError) as exc:
        say(f"could not start: {exc}")
        return 1
    finally:
        say("stopping ...")
        stack.stop()
        say("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

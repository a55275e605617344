"""CLI: python -m waha_emulator --host 127.0.0.1 --port 3000 (console script: waha-emulator)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .config import EmulatorConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="waha-emulator",
        description="WAHA HTTP API emulator for local runs and tests. Flags override environment variables.",
    )
    p.add_argument("--host", help="bind address (env WAHA_EMULATOR_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (env WAHA_EMULATOR_PORT or WHATSAPP_API_PORT, default 3000)")
    p.add_argument("--api-key", help="X-Api-Key to require (env WAHA_API_KEY; generated and printed if unset)")
    p.add_argument("--state-file", type=Path,
                   help="JSON file where sessions are persisted (env WAHA_EMULATOR_STATE_FILE)")
    p.add_argument("--qr-first-lifetime", type=float, help="seconds the first QR lives (default 60)")
    p.add_argument("--qr-next-lifetime", type=float, help="seconds each later QR lives (default 20)")
    p.add_argument("--qr-count", type=int, help="QRs shown before the session goes FAILED (default 6)")
    p.add_argument("--starting-delay", type=float, help="seconds spent in STARTING (default 0.3)")
    p.add_argument("--wait-timeout", type=float,
                   help="seconds send/QR calls wait for the needed status before 422 (default 2)")
    p.add_argument("--send-wait-timeout", type=float, help="like --wait-timeout, only for sends and chats")
    p.add_argument("--qr-wait-timeout", type=float, help="like --wait-timeout, only for the QR endpoint")
    p.add_argument("--ack-delay", type=float, help="seconds before each ack of a sent message (default 0.3)")
    p.add_argument("--webhook-timeout", type=float, help="webhook request timeout in seconds (default 10)")
    p.add_argument("--send-shape", choices=["gows", "noweb"], help="shape of the send answers (default gows)")
    p.add_argument("--files-lifetime", type=float,
                   help="seconds a downloaded media file is served, 0: forever (env WHATSAPP_FILES_LIFETIME, default 180)")
    p.add_argument("--store-default", choices=["on", "off"],
                   help="NOWEB store for sessions whose config does not set noweb.store.enabled (default on)")
    p.add_argument("--seed-history", type=int,
                   help="generated chats for every session that pairs anew (env WAHA_EMULATOR_SEED_HISTORY, default 0)")
    p.add_argument("--seed-history-messages", type=int,
                   help="messages in each of those chats (env WAHA_EMULATOR_SEED_HISTORY_MESSAGES, default 20)")
    p.add_argument("--base-url", help="start of media URLs (env WAHA_BASE_URL, default http://{host}:{port})")
    p.add_argument("--no-restart-sessions", action="store_true",
                   help="do not restart sessions that were running (WAHA_WORKER_RESTART_SESSIONS=False)")
    p.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"],
                   help="log level (env WAHA_EMULATOR_LOG_LEVEL, default info)")
    return p


def config_from_args(argv: list[str] | None = None) -> EmulatorConfig:
    args = build_parser().parse_args(argv)
    return EmulatorConfig.from_env(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        state_file=args.state_file,
        qr_first_lifetime=args.qr_first_lifetime,
        qr_next_lifetime=args.qr_next_lifetime,
        qr_count=args.qr_count,
        starting_delay=args.starting_delay,
        send_wait_timeout=args.send_wait_timeout if args.send_wait_timeout is not None else args.wait_timeout,
        qr_wait_timeout=args.qr_wait_timeout if args.qr_wait_timeout is not None else args.wait_timeout,
        ack_delay=args.ack_delay,
        webhook_timeout=args.webhook_timeout,
        send_shape=args.send_shape,
        files_lifetime=args.files_lifetime,
        store_default=None if args.store_default is None else args.store_default == "on",
        base_url=args.base_url,
        seed_history=args.seed_history,
        seed_history_messages=args.seed_history_messages,
        restart_sessions=False if args.no_restart_sessions else None,
        log_level=args.log_level,
    )


def main(argv: list[str] | None = None) -> None:
    try:
        config = config_from_args(argv)
    except ValueError as exc:
        print(f"waha-emulator: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    # uvicorn shuts down gracefully, then re-raises the signal it caught; end with status 0 instead of dying by it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level, lifespan="on")


if __name__ == "__main__":
    main()

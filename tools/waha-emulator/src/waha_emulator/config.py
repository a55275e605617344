"""Emulator settings, from the environment and/or explicit values (CLI flags, tests)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)

WAHA_VERSION = "2026.7.1"
ENGINE = "NOWEB"
SEND_SHAPES = ("gows", "noweb")


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class EmulatorConfig:
    # None = not configured: create_app generates one and prints it, like WAHA does.
    api_key: str | None = None
    # WAHA_NO_API_KEY=True together with an empty WAHA_API_KEY really disables auth.
    no_api_key: bool = False
    host: str = "127.0.0.1"
    port: int = 3000
    state_file: Path | None = None
    qr_first_lifetime: float = 60.0
    qr_next_lifetime: float = 20.0
    qr_count: int = 6
    starting_delay: float = 0.3
    # WAHA waits 5 s / 10 s; short by default here so clients see the 422 quickly.
    send_wait_timeout: float = 2.0
    qr_wait_timeout: float = 2.0
    # Delay before the SERVER ack of a sent message, and again before the DEVICE ack.
    ack_delay: float = 0.3
    webhook_timeout: float = 10.0
    restart_sessions: bool = True
    # Shape of the sendText answer: "gows" ({"id": "...", "_data": ...}) or "noweb" (Baileys record).
    send_shape: str = "gows"
    # WHATSAPP_FILES_LIFETIME: seconds a downloaded media file is served (0: forever).
    files_lifetime: float = 180.0
    # Whether a session whose config says nothing about `noweb.store.enabled` keeps a store. WAHA's
    # default is off; the emulator's is on so chats and messages work without a config line.
    store_default: bool = True
    # WAHA_BASE_URL: the start of `media.url` (None: http://{host}:{port}).
    base_url: str | None = None
    # Bounds on fetching a `file.url` of a media send.
    media_fetch_timeout: float = 10.0
    media_max_bytes: int = 50 * 1024 * 1024
    # Generated chats (and messages in each) given to every session that pairs anew, for demos.
    seed_history: int = 0
    seed_history_messages: int = 20
    version: str = WAHA_VERSION
    engine: str = ENGINE
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.qr_count < 1:
            raise ValueError("qr_count must be at least 1")
        if self.send_shape not in SEND_SHAPES:
            raise ValueError(f"send_shape must be one of {SEND_SHAPES}")
        if self.seed_history * self.seed_history_messages > 20_000:
            raise ValueError("seed_history x seed_history_messages must be at most 20000 (the store's size)")
        for name in ("seed_history", "seed_history_messages", "qr_first_lifetime", "qr_next_lifetime", "starting_delay", "send_wait_timeout",
                     "qr_wait_timeout", "ack_delay", "webhook_timeout", "files_lifetime", "media_fetch_timeout",
                     "media_max_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def files_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/") + "/api/files/"

    @property
    def auth_enabled(self) -> bool:
        return not (self.no_api_key and not self.api_key)

    def with_generated_key(self) -> tuple[EmulatorConfig, bool]:
        """Return a config that has a key, and whether it had to be generated."""
        if self.api_key or not self.auth_enabled:
            return self, False
        return replace(self, api_key=secrets.token_hex(16)), True

    def override(self, **values: object) -> EmulatorConfig:
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in values.items() if k in known and v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> EmulatorConfig:
        env = os.environ if environ is None else environ

        def num(name: str, conv: Callable[[str], N], default: N) -> N:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                return conv(raw)
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a valid {getattr(conv, '__name__', 'value')}") from exc

        api_key = env.get("WAHA_API_KEY", env.get("WHATSAPP_API_KEY"))
        state_file = env.get("WAHA_EMULATOR_STATE_FILE") or None
        base = cls()
        config = cls(
            api_key=api_key if api_key else None,
            no_api_key=_env_bool(env.get("WAHA_NO_API_KEY"), False),
            host=env.get("WAHA_EMULATOR_HOST") or base.host,
            port=num("WAHA_EMULATOR_PORT", int, num("WHATSAPP_API_PORT", int, base.port)),
            state_file=Path(state_file) if state_file else None,
            qr_first_lifetime=num("WAHA_EMULATOR_QR_FIRST_LIFETIME", float, base.qr_first_lifetime),
            qr_next_lifetime=num("WAHA_EMULATOR_QR_NEXT_LIFETIME", float, base.qr_next_lifetime),
            qr_count=num("WAHA_EMULATOR_QR_COUNT", int, base.qr_count),
            starting_delay=num("WAHA_EMULATOR_STARTING_DELAY", float, base.starting_delay),
            send_wait_timeout=num("WAHA_EMULATOR_SEND_WAIT_TIMEOUT", float,
                                  num("WAHA_EMULATOR_WAIT_TIMEOUT", float, base.send_wait_timeout)),
            qr_wait_timeout=num("WAHA_EMULATOR_QR_WAIT_TIMEOUT", float,
                                num("WAHA_EMULATOR_WAIT_TIMEOUT", float, base.qr_wait_timeout)),
            ack_delay=num("WAHA_EMULATOR_ACK_DELAY", float, base.ack_delay),
            webhook_timeout=num("WAHA_EMULATOR_WEBHOOK_TIMEOUT", float, base.webhook_timeout),
            restart_sessions=_env_bool(env.get("WAHA_WORKER_RESTART_SESSIONS"), base.restart_sessions),
            send_shape=(env.get("WAHA_EMULATOR_SEND_SHAPE") or base.send_shape).lower(),
            files_lifetime=num("WHATSAPP_FILES_LIFETIME", float, base.files_lifetime),
            store_default=_env_bool(env.get("WAHA_EMULATOR_STORE_DEFAULT"), base.store_default),
            base_url=env.get("WAHA_BASE_URL") or None,
            media_fetch_timeout=num("WAHA_EMULATOR_MEDIA_FETCH_TIMEOUT", float, base.media_fetch_timeout),
            media_max_bytes=num("WAHA_EMULATOR_MEDIA_MAX_BYTES", int, base.media_max_bytes),
            seed_history=num("WAHA_EMULATOR_SEED_HISTORY", int, base.seed_history),
            seed_history_messages=num("WAHA_EMULATOR_SEED_HISTORY_MESSAGES", int, base.seed_history_messages),
            log_level=(env.get("WAHA_EMULATOR_LOG_LEVEL") or base.log_level).lower(),
        )
        return config.override(**overrides)

"""Settings of webhook-ingest (environment variables, optionally a .env file)."""

from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from fleet_shared.settings import Duration, FleetSettings

DEFAULT_PORT = 8081
DEFAULT_MAX_BYTES = 1024 * 1024


class Settings(FleetSettings):
    port: int = DEFAULT_PORT
    # Shared with the orchestrator, which derives each session's webhook key from it
    # (`fleet_shared.waha.session_webhook_key`); WAHA signs with the session's key.
    webhook_hmac_key: str = Field(min_length=1)
    # Also take webhooks signed with the fleet key itself on `/webhooks/waha` (no session in the
    # path): sessions configured by a release before per-session keys, until the orchestrator
    # has rolled the new config out to them (docs/operations.md#upgrading).
    webhook_accept_fleet_key: bool = False
    # Webhooks signed longer ago than this (their `timestamp`), or further ahead than the skew, are
    # refused: a captured webhook cannot be replayed later. WAHA retries one for ~30 s.
    webhook_max_age: Duration = timedelta(minutes=10)
    webhook_max_skew: Duration = timedelta(minutes=1)
    # Larger bodies are refused with 413 before they are read in full.
    webhook_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    # A user's messages are reported to the orchestrator as `session.active` at most this often
    # (`activity.py`). Keep it far below SESSION_IDLE_TIMEOUT: the idle clock may lag behind the
    # newest message by this much, so a session may be stopped as idle that much early.
    activity_report_interval: Duration = timedelta(seconds=60)

    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_hmac_key",)

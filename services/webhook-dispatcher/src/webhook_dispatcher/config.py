"""Dispatcher settings: the common ones, MongoDB, and how deliveries are made and retried."""

from datetime import timedelta

from pydantic import Field

from fleet_shared.settings import Duration, FleetSettings, MongoSettings

SERVICE_NAME = "webhook-dispatcher"


class Settings(FleetSettings, MongoSettings):
    port: int = 8084
    # Deliver to URLs whose host resolves to a private, loopback or link-local address (SSRF:
    # off in production; local runs and tests that post to 127.0.0.1 turn it on).
    webhook_allow_private_targets: bool = False
    # One attempt (connect, send, answer) may take this long; longer counts as a failed attempt.
    webhook_timeout: Duration = timedelta(seconds=10)
    # Attempts in flight at once, over every subscription.
    webhook_concurrency: int = Field(default=64, ge=1, le=1000)
    # A delivery is retried (exponential backoff with full jitter, from WEBHOOK_BACKOFF up to
    # WEBHOOK_MAX_BACKOFF) until this long after its event came; then it is `failed` and the
    # subscription goes on with the next event.
    webhook_retry_for: Duration = timedelta(hours=24)
    webhook_backoff: Duration = timedelta(seconds=5)
    webhook_max_backoff: Duration = timedelta(hours=1)
    webhook_max_per_user: int = Field(default=10, ge=1, le=100)
    # Deliveries (and their log) are kept this long after their event came.
    webhook_log_retention: Duration = timedelta(days=7)

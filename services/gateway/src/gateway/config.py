"""Gateway settings: the common ones plus the key that verifies client tokens."""

import logging
import secrets
from datetime import timedelta
from typing import ClassVar

from pydantic import Field, model_validator

from fleet_shared.media import MediaSettings
from fleet_shared.settings import DEV_SECRET_PREFIX, Duration, FleetSettings, MongoSettings

log = logging.getLogger(__name__)


class Settings(FleetSettings, MongoSettings, MediaSettings):
    """`MONGODB_URL` is used for the media store only (MEDIA_STORE=gridfs): the gateway reads no
    other collection (ADR 0001, 0010)."""

    port: int = 8080
    # HS256 key for client tokens; required (and not a dev key) outside dev.
    jwt_secret: str = ""
    # Clock skew tolerated on `exp`/`nbf`/`iat`.
    jwt_leeway: Duration = timedelta(0)
    # A token whose `exp` is further away than this is refused.
    jwt_max_lifetime: Duration = timedelta(days=30)
    # When set, tokens must carry this `aud` / `iss`.
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # Live events (WebSocket /api/v1/events). Events waiting for one socket; a client that lets
    # more pile up is disconnected (close code 4001) rather than slowing the gateway down.
    events_buffer: int = Field(default=256, ge=1, le=100_000)
    # Deliveries RabbitMQ hands one socket's consumer ahead of its acks.
    events_prefetch: int = Field(default=16, ge=1, le=1_000)
    # Open sockets per user, and per gateway process (each holds one AMQP channel and one queue).
    events_max_per_user: int = Field(default=10, ge=1)
    events_max_connections: int = Field(default=1_000, ge=1, le=2_000)

    # Per user and gateway process (`limits.py`): requests waiting for their answer at once (keep
    # it well below the orchestrator's COMMAND_PREFETCH divided by the gateway replicas), and the
    # rate, on average and in a burst. Beyond either: 429 with Retry-After.
    user_max_pending: int = Field(default=16, ge=1)
    user_rate: float = Field(default=50.0, gt=0)
    user_burst: int = Field(default=100, ge=1)

    # How long a user's status may be answered from this process's read model (`status_cache.py`:
    # changes reach it as events, so this bounds only how far `lastActivity` lags behind commands
    # made through other gateway processes); 0 asks the orchestrator on every read.
    status_cache_ttl: Duration = timedelta(seconds=5)

    # Request bodies larger than this are refused (413) before they are read; an upload to send
    # (multipart) may be MEDIA_MAX_BYTES plus its form.
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)

    # A media URL to send from may be a private or loopback address (only for tests and trusted
    # networks: otherwise a user could make the gateway fetch what only it can reach).
    media_url_allow_private: bool = False

    secret_fields: ClassVar[tuple[str, ...]] = ("jwt_secret",)

    @model_validator(mode="after")
    def _dev_secret_when_unset(self) -> "Settings":
        if self.environment == "dev" and not self.jwt_secret:
            self.jwt_secret = DEV_SECRET_PREFIX + secrets.token_urlsafe(32)
            log.warning("JWT_SECRET unset: generated a random dev key; no client token will verify")
        return self

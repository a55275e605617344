"""The orchestrator's settings: the common ones plus WAHA, webhooks, limits and retry policy."""

from datetime import timedelta
from typing import ClassVar

from fleet_shared.media import MediaSettings
from fleet_shared.settings import Duration, FleetSettings, MongoSettings

SERVICE_NAME = "session-orchestrator"
# A user's lastActivity may lag behind their newest message by this share of SESSION_IDLE_TIMEOUT
# (message activity is written at most once per that span per user: docs/sessions.md §5).
ACTIVITY_PRECISION_SHARE = 0.01


class Settings(FleetSettings, MongoSettings, MediaSettings):
    port: int = 8082

    waha_url: str = "http://127.0.0.1:3000"
    waha_api_key: str = ""
    # The URL WAHA is told to call for this fleet's sessions (webhook-ingest), and its HMAC key.
    webhook_url: str = "http://127.0.0.1:8081/webhooks/waha"
    webhook_hmac_key: str = ""

    # A session nobody used (commands, messages) for this long is stopped (not logged out).
    session_idle_timeout: Duration = timedelta(hours=24)
    # How often each replica looks for idle sessions.
    idle_sweep_interval: Duration = timedelta(minutes=1)
    # At most this many sessions run at once; starting one more answers 429 session_limit_reached.
    max_sessions: int = 1000

    # One WAHA HTTP attempt never takes longer than this (WAHA itself waits up to ~15 s on sends).
    waha_timeout: Duration = timedelta(seconds=15)
    # Transient WAHA failures (429, 5xx, timeouts) are tried at most this many times in all.
    waha_attempts: int = 4
    waha_backoff_base: Duration = timedelta(milliseconds=200)
    waha_backoff_max: Duration = timedelta(seconds=3)

    # Copying a media file out of WAHA: this many tries in all, backing off up to the cap (WAHA keeps
    # the file for WHATSAPP_FILES_LIFETIME, 180 s by default: the tries must end well before that).
    media_fetch_attempts: int = 6
    media_fetch_backoff_max: Duration = timedelta(seconds=10)
    # Media files copied at once by each replica (each may hold up to MEDIA_MAX_BYTES in memory).
    media_prefetch: int = 4
    # Sessions whose WAHA config is out of date get the new one one at a time, this far apart (WAHA
    # restarts a session to change its config: docs/sessions.md).
    config_rollout_interval: Duration = timedelta(seconds=5)

    # Deliveries in flight per partition consumer: how many users one partition serves at once.
    command_prefetch: int = 64
    # A reply is sent this long before the requester's REQUEST_TIMEOUT runs out.
    reply_margin: Duration = timedelta(milliseconds=1500)
    # How often a QR request looks at the session while waiting for its QR.
    qr_poll_interval: Duration = timedelta(milliseconds=250)

    # The history import (docs/sessions.md): the newest messages of each chat it takes, chats read
    # per overview page, chats read at once, the lease a replica holds on an import (another one
    # resumes it when it runs out), how often each replica looks for such imports, and its bound.
    history_messages_per_chat: int = 50
    history_chats_page: int = 50
    history_concurrency: int = 4
    history_lease: Duration = timedelta(seconds=30)
    history_resume_interval: Duration = timedelta(seconds=5)
    history_import_timeout: Duration = timedelta(minutes=30)
    # WAHA calls of the import are tried this often, waiting out 429s (Retry-After) up to the cap.
    history_waha_attempts: int = 8
    history_backoff_max: Duration = timedelta(seconds=30)

    secret_fields: ClassVar[tuple[str, ...]] = ("waha_api_key", "webhook_hmac_key")

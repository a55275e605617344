"""Persister settings: the common ones, MongoDB, and how the event consumer behaves."""

from datetime import timedelta

from pydantic import Field

from fleet_shared.settings import Duration, FleetSettings, MongoSettings

from .eventlog import DEFAULT_RETENTION

SERVICE_NAME = "persister"


class Settings(FleetSettings, MongoSettings):
    port: int = 8083
    # Deliveries in flight per consumer (RabbitMQ basic.qos); each one is handled concurrently.
    # Above BATCH_MAX_SIZE, so the next batch gathers while one is being written.
    prefetch: int = Field(default=256, ge=1, le=1000)
    # Events written together (one bulk write per collection): at most this many, gathered for at
    # most BATCH_WINDOW (ADR 0007; `batching.py`).
    batch_max_size: int = Field(default=128, ge=1, le=1000)
    batch_window: Duration = timedelta(milliseconds=5)
    # How long one delivery keeps retrying a write MongoDB could not take (down, failing over)
    # before it is handed back to the queue (nack + requeue, counted by the queue's delivery limit).
    write_retry_timeout: Duration = timedelta(seconds=30)
    # First pause between two write attempts; doubles up to `write_retry_max_backoff`.
    write_retry_backoff: Duration = timedelta(milliseconds=200)
    write_retry_max_backoff: Duration = timedelta(seconds=5)
    # A page of chats or messages holds at most this many bytes (about, as JSON) besides `limit`
    # items: past it the page is cut short, with `nextCursor`. Keeps every reply far below the
    # broker's message size limit and a query's memory bounded.
    page_max_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=8 * 1024 * 1024)
    # How long each stored event stays replayable (`GET /api/v1/events?after=`, the WebSocket's
    # `?after=`, webhook retries); the TTL index on `events` removes older ones.
    event_retention: Duration = Field(default=DEFAULT_RETENTION, ge=timedelta(minutes=1))

"""Outbound webhooks: a user's subscriptions to their own event stream, answered by the
webhook-dispatcher (`user.<id>.webhook.*` on `<prefix>.queries`). See docs/api.md, "Webhooks".
"""

from typing import Literal

from pydantic import Field, field_validator

from .base import Contract
from .stream import STREAMED_TYPES

MAX_URL = 2048
MAX_DELIVERY_PAGE = 200
DeliveryStatus = Literal["pending", "delivered", "failed"]


def _check_filter(events: list[str]) -> list[str]:
    """Each entry an event type (`message.received`), an aggregate (`message.*`) or `*`."""
    aggregates = {t.split(".")[0] for t in STREAMED_TYPES}
    for entry in events:
        aggregate, _, action = entry.partition(".")
        if not (entry == "*" or entry in STREAMED_TYPES or (action == "*" and aggregate in aggregates)):
            raise ValueError(f"not an event type, `<aggregate>.*` or `*`: {entry!r}")
    return sorted(set(events))


def matches(events: list[str], event_type: str) -> bool:
    """Whether a subscription's filter takes `event_type`."""
    return "*" in events or event_type in events or f"{event_type.split('.')[0]}.*" in events


class CreateWebhook(Contract):
    TYPE = "webhook.create"

    url: str = Field(min_length=8, max_length=MAX_URL, description="http(s) URL the events are POSTed to")
    events: list[str] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=32,
        description="event types (`message.received`), aggregates (`message.*`) or `*` (the default)",
    )

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _check_filter(value)


class ListWebhooks(Contract):
    TYPE = "webhook.list"


class DeleteWebhook(Contract):
    TYPE = "webhook.delete"

    webhook_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class ListDeliveries(Contract):
    """The newest deliveries of one subscription first (by `seq`), `before` a `seq`."""

    TYPE = "webhook.deliveries"

    webhook_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    limit: int = Field(default=50, ge=1, le=MAX_DELIVERY_PAGE)
    before: int | None = Field(default=None, ge=1, description="a `seq`: only deliveries of older events")


class WebhookView(Contract):
    id: str
    url: str
    events: list[str]
    created_at: str = Field(description="ISO 8601")


class CreatedWebhook(WebhookView):
    secret: str = Field(description="signs every delivery (HMAC-SHA512); shown once, here")


class WebhookList(Contract):
    items: list[WebhookView]


class DeliveryView(Contract):
    seq: int
    event_id: str
    type: str
    status: DeliveryStatus = Field(description="`pending` (being tried), `delivered` (a 2xx), `failed` (gave up)")
    attempts: int
    last_status: int | None = Field(default=None, description="the HTTP status of the last attempt")
    last_error: str | None = None
    next_attempt_at: str | None = Field(default=None, description="ISO 8601, while pending")
    delivered_at: str | None = None
    created_at: str


class DeliveryPage(Contract):
    items: list[DeliveryView]
    next_before: int | None = Field(default=None, description="pass it back as `before` for older ones")


WEBHOOK_TYPES: dict[str, type[Contract]] = {
    c.TYPE: c for c in (CreateWebhook, ListWebhooks, DeleteWebhook, ListDeliveries)
}

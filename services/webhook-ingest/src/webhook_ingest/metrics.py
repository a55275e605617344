"""Prometheus counters of webhook-ingest (served at /metrics)."""

from prometheus_client import Counter

OUTCOMES = ("published", "parked", "ignored", "invalid_signature", "too_large", "invalid", "stale", "unavailable")

WEBHOOKS = Counter("webhook_ingest_webhooks_total", "WAHA webhooks received, by outcome", ["outcome"])
EVENTS = Counter("webhook_ingest_events_published_total", "Fleet events published to the events exchange, by type", ["type"])

# The labelled children, looked up once rather than per webhook (`labels()` takes a lock each time).
_BY_OUTCOME = {outcome: WEBHOOKS.labels(outcome) for outcome in OUTCOMES}
_BY_TYPE: dict = {}


def count(outcome: str) -> None:
    _BY_OUTCOME[outcome].inc()


def count_event(event_type: str) -> None:
    child = _BY_TYPE.get(event_type)
    if child is None:
        child = _BY_TYPE[event_type] = EVENTS.labels(event_type)
    child.inc()

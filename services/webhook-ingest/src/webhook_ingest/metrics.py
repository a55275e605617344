"""Prometheus counters of webhook-ingest (served at /metrics)."""

from prometheus_client import Counter

OUTCOMES = ("published", "parked", "ignored", "invalid_signature", "too_large", "invalid", "unavailable")

WEBHOOKS = Counter("webhook_ingest_webhooks_total", "WAHA webhooks received, by outcome", ["outcome"])
EVENTS = Counter("webhook_ingest_events_published_total", "Fleet events published to the events exchange, by type", ["type"])

for _outcome in OUTCOMES:
    WEBHOOKS.labels(_outcome)


def count(outcome: str) -> None:
    WEBHOOKS.labels(outcome).inc()

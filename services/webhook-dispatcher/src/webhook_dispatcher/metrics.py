"""Prometheus metrics of the dispatcher (served by the shared ops router at /metrics)."""

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter("webhook_attempts_total", "Delivery attempts", ["outcome"])
GIVEN_UP = Counter("webhook_deliveries_failed_total", "Deliveries given up after WEBHOOK_RETRY_FOR")
SCHEDULED = Counter("webhook_deliveries_scheduled_total", "Deliveries scheduled from the event stream")
GAPS_FILLED = Counter("webhook_stream_gaps_filled_total", "Events read from the persister to fill a hole in the stream")
LATENCY = Histogram(
    "webhook_event_to_delivery_seconds", "From the event being stored to its successful delivery",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)

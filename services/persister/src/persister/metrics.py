"""Prometheus counters of the persister (served by the shared ops router at /metrics)."""

from prometheus_client import Counter

EVENTS_RECEIVED = Counter("persister_events_received_total", "Valid message events delivered", ["type"])
EVENTS_WRITTEN = Counter("persister_events_written_total", "Events that changed a stored message")
EVENTS_DUPLICATE = Counter(
    "persister_events_duplicate_total", "Events that changed nothing (replays, duplicates, stale acks)"
)
EVENTS_REJECTED = Counter("persister_events_rejected_total", "Deliveries dead-lettered", ["reason"])
WRITE_FAILURES = Counter("persister_write_failures_total", "Write attempts MongoDB could not take now")
EVENTS_REQUEUED = Counter(
    "persister_events_requeued_total", "Deliveries handed back to the queue unacked after the write retry window"
)
QUERIES = Counter("persister_queries_total", "Queries answered", ["type", "outcome"])
EVENTS_STREAMED = Counter("persister_events_streamed_total", "Events numbered into their user's stream and published")

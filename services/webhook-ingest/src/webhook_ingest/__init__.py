"""webhook-ingest: receives WAHA's signed webhooks and publishes them as fleet events."""

"""A user's stored event stream as the persister pages it, for tests that stand in for the persister."""

from typing import Any


def event_page(stored: list[dict[str, Any]], after: int, limit: int) -> dict[str, Any]:
    """The `event.list` answer (`EventPage`) over `stored`, one user's stored events (envelope + `seq`)."""
    ordered = sorted(stored, key=lambda e: e["seq"])
    page = [e for e in ordered if e["seq"] > after][:limit]
    return {"items": page, "next": page[-1]["seq"] if page else after, "last": ordered[-1]["seq"] if ordered else 0}

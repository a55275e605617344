"""What every page of the persister's answers holds to: documents read a few at a time, a byte cap."""

from typing import Any

# Documents a page's cursor holds in memory at a time (also bounds what one read costs the persister).
PAGE_BATCH = 16
DEFAULT_PAGE_MAX_BYTES = 1024 * 1024


def json_size(value: Any) -> int:
    """About how many bytes `value` takes as JSON (strings by their UTF-8 length): what a page's
    byte cap counts, without encoding the page twice."""
    if isinstance(value, str):
        return len(value.encode()) + 2
    if isinstance(value, dict):
        return 2 + sum(len(k) + 4 + json_size(v) for k, v in value.items())
    if isinstance(value, list):
        return 2 + sum(json_size(v) + 1 for v in value)
    return 24  # numbers, booleans, null, dates

"""The replayable event stream (docs/reliability.md, "The event stream"): every public event of a
user, stored by the persister with a per-user `seq` and then published as it is stored.

A stored event is its envelope plus `seq`: 1, 2, 3, … per user, strictly increasing in the order
the events were stored, each event's number given once (a redelivery keeps it) and without holes
(only the oldest go, after `EVENT_RETENTION`). `event.list` pages them after a `seq`.
"""

from collections.abc import Iterable
from typing import Any, Generic, TypeVar, Union

from pydantic import Field

from .base import Contract, Envelope
from .events import PUBLIC_EVENT_TYPES

MAX_EVENT_PAGE = 500
# What the stream carries: the events a client may see (issue 18's imported history is not among them).
STREAMED_TYPES = frozenset(PUBLIC_EVENT_TYPES)

DataT = TypeVar("DataT")


class StoredEvent(Envelope[DataT], Generic[DataT]):
    """An envelope as the stream carries it: with its `seq`."""

    seq: int = Field(ge=1, description="the event's place in its user's stream: 1, 2, 3, …")


def stored_event_type(model: type[Contract]) -> type[StoredEvent[Any]]:
    return StoredEvent[model]  # type: ignore[valid-type]  # a class chosen at run time


def stored_event_union(models: Iterable[type[Contract]]) -> Any:
    """The union of the stored events of `models`, for pydantic to validate or document."""
    return Union[tuple(stored_event_type(m) for m in models)]  # noqa: UP007 (a union built at run time)


def parse_stored_event(raw: Any) -> StoredEvent:
    """Validate a stored event and its `data` against the model its `type` names (`ValueError` if not one)."""
    if not isinstance(raw, dict):
        raise ValueError("a stored event is a JSON object")
    model = PUBLIC_EVENT_TYPES.get(raw.get("type", ""))
    if model is None or raw.get("type") not in STREAMED_TYPES:
        raise ValueError(f"not a streamed event type: {raw.get('type')!r}")
    return stored_event_type(model).model_validate(raw)


class ListEvents(Contract):
    """A page of the user's stored events with `seq` > `after`, oldest first."""

    TYPE = "event.list"

    after: int = Field(default=0, ge=0, description="the last `seq` seen (0: from the oldest kept)")
    limit: int = Field(default=100, ge=1, le=MAX_EVENT_PAGE)


class EventPage(Contract):
    items: list[dict[str, Any]] = Field(description="stored events (envelope + `seq`), by `seq`")
    next: int = Field(description="pass it back as `after`: the last `seq` of this page (`after` itself when empty)")
    last: int = Field(description="the newest `seq` of the user's stream when the page was read (0: none yet)")

"""Sending exactly once per Idempotency-Key, as pure decisions (ADR 0016; the claims live in the send ledger).

Every send is claimed before WAHA's sendText, by the client's Idempotency-Key or else by the
command's id, so neither a client retry nor a redelivery sends a message twice. Right before the
sendText call the claim records the message id the message will have (WAHA's `new-message-id`)
and until when that attempt may still be in flight (its reply deadline plus a margin). A repeat of
a done key gets the stored result. A pending claim (the process died, or timed out, between the
WAHA call and the result) is settled by asking WAHA for the message by its id (`settle`). A send
WAHA certainly did not make releases the claim so the client can try again with the same key.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

# Added to an attempt's budget: its last HTTP attempt, and clock skew between replicas.
SENDING_MARGIN = 5.0  # seconds


def claim_key(idempotency_key: str | None, command_id: str) -> str:
    """What a send is claimed under: the client's key, else the command's own id."""
    return f"key:{idempotency_key}" if idempotency_key else f"cmd:{command_id}"


def fingerprint(chat_id: str, text: str | None, reply_to: str | None, media_sha256: str | None = None) -> str:
    """What the key was first used for: the same key with another message is a client error. (A
    text-only message's fingerprint is what it was before media could be sent.)"""
    parts = [chat_id, text or "", reply_to or ""]
    if media_sha256 is not None:
        parts.append(media_sha256)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def sending_until(now: datetime, budget: float) -> datetime:
    """Until when an attempt that may run for `budget` seconds from `now` can still reach WAHA."""
    return now + timedelta(seconds=max(0.0, budget) + SENDING_MARGIN)


@dataclass(frozen=True)
class Claim:
    outcome: Literal["claimed", "done", "pending", "mismatch"]
    result: dict | None = None
    # Of a pending claim: the id its message was sent with, and until when that attempt could run.
    message_id: str | None = None
    sending_at: datetime | None = None
    sending_until: datetime | None = None
    tracked: bool = True  # False: a claim from before sends were tracked; its outcome cannot be known


@dataclass(frozen=True)
class Sending:
    """Recorded with a new claim: WAHA's sendText may be called from now on, with this id, for at
    most `budget` seconds (as `SendLedger.mark_sending` records it)."""

    message_id: str | None
    budget: float


def settle(claim: Claim, found: bool, now: datetime) -> Literal["sent", "send", "unknown"]:
    """What to do with a pending claim, given whether WAHA has its message (`found`).

    `sent`: WAHA sent it, complete the claim with it. `send`: WAHA never got it and no earlier
    attempt can still be in flight, send now (with the claim's id). `unknown`: do not send.
    """
    if not claim.tracked:
        return "unknown"
    if claim.sending_at is None:
        return "send"  # claimed, but WAHA was never called
    if claim.message_id is None:
        return "unknown"  # called without an id we could look the message up by
    if found:
        return "sent"
    until = claim.sending_until
    if until is not None and now > (until if until.tzinfo else until.replace(tzinfo=UTC)):
        return "send"
    return "unknown"

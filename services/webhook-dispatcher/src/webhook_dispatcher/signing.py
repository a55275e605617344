"""Signing a delivery, Stripe-style: `Webhook-Signature: t=<unix seconds>,v1=<hex>` where the hex
is HMAC-SHA512 with the subscription's secret over `"<t>.<raw body>"` (docs/api.md shows how a
receiver checks it). The timestamp is signed too, so a receiver can refuse old replays.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Webhook-Signature"
EVENT_ID_HEADER = "Webhook-Id"  # the event's id: a receiver dedupes by it
SEQ_HEADER = "Webhook-Seq"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha512)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (and the tests): the signature matches and is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))

"""WAHA's webhook signature: lowercase hex HMAC-SHA512 of the exact raw body, keyed with the shared key."""

import hashlib
import hmac

ALGORITHM = "sha512"


def sign(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def verify(key: str, body: bytes, signature: str | None, algorithm: str | None = None) -> bool:
    """True when `signature` (the `X-Webhook-Hmac` header) signs `body`; compared in constant time.

    `algorithm` is the optional `X-Webhook-Hmac-Algorithm` header; anything but sha512 is refused.
    """
    if not signature:
        return False
    if algorithm is not None and algorithm.strip().lower() != ALGORITHM:
        return False
    expected = sign(key, body).encode()
    # Headers arrive as latin-1 text; a non-hex value simply fails the comparison.
    given = signature.strip().lower().encode("latin-1", errors="replace")
    return hmac.compare_digest(expected, given)

"""QR values (shaped like WhatsApp's "2@ref,key,key,..." pairing string) and real QR PNGs."""

from __future__ import annotations

import base64
import io
import secrets
from functools import lru_cache

import segno


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def new_qr_value(session: str, index: int) -> str:
    """A fresh, unique pairing string; it names the session and the rotation number."""
    return f"2@{_b64(36)},{_b64(32)},{_b64(32)},{session},{index}"


@lru_cache(maxsize=256)
def qr_png(value: str) -> bytes:
    buf = io.BytesIO()
    segno.make(value, error="l", micro=False).save(buf, kind="png", scale=4, border=4)
    return buf.getvalue()

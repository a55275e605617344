"""Secrets redacted from log lines, tracebacks included."""

import logging

from fleet_shared.redact import REDACTED, RedactSecrets, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def test_tokens_in_urls_headers_and_text_are_redacted():
    assert redact(f'127.0.0.1:5 - "WebSocket /api/v1/events?token={JWT}" [accepted]') == (
        f'127.0.0.1:5 - "WebSocket /api/v1/events?token={REDACTED}" [accepted]'
    )
    assert redact("GET /x?a=1&ticket=abc.def&b=2") == f"GET /x?a=1&ticket={REDACTED}&b=2"
    assert redact("/api/files/s/f.jpg?x-api-key=k3y") == f"/api/files/s/f.jpg?x-api-key={REDACTED}"
    assert redact("Authorization: Bearer abc123") == f"Authorization: Bearer {REDACTED}"
    assert redact(f"refused {JWT} twice") == f"refused {REDACTED} twice"
    assert redact("nothing secret: user alice, chat 1@c.us") == "nothing secret: user alice, chat 1@c.us"


def test_the_filter_rewrites_messages_and_tracebacks(caplog):
    logger = logging.getLogger("redact-test")
    handler = caplog.handler
    handler.addFilter(RedactSecrets())
    try:
        logger.warning("socket %s closed", f"/events?token={JWT}")
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            logger.exception("failed")
    finally:
        handler.removeFilter(handler.filters[-1])
    assert JWT not in caplog.text and REDACTED in caplog.text
    assert "ValueError: bad token [redacted]" in caplog.text

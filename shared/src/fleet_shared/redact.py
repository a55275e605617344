"""Secrets out of log lines: tokens in URLs (`?token=`, `?ticket=`), bearer credentials, anything
shaped like a JWT. Installed on every service's log handler (`http.configure_logging`), so it
covers third-party lines too (uvicorn logs a WebSocket's path with its query string)."""

import logging
import re

REDACTED = "[redacted]"
_PATTERNS = (
    # a credential in a query string
    (re.compile(r"([?&](?:token|ticket|access_token|api_key|x-api-key)=)[^&\s\"']+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"(\bBearer\s+)[^\s\"',]+", re.IGNORECASE), rf"\1{REDACTED}"),
    # a JWT anywhere (three base64url parts, the first a JSON header)
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message (and its traceback) with the secrets in it redacted."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True

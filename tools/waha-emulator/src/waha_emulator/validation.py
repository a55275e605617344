"""Request validation the way WAHA's class-validator DTOs do it (400 with a message array)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from ulid import ULID

from .errors import ValidationFailed

NAME_PATTERN = "^[a-zA-Z0-9_-]*$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_MAX = 54

EVENTS = (
    "session.status", "message", "message.reaction", "message.any", "message.ack", "message.ack.group",
    "message.waiting", "message.revoked", "message.edited", "state.change", "group.join", "group.leave",
    "group.v2.join", "group.v2.leave", "group.v2.update", "group.v2.participants", "presence.update",
    "poll.vote", "poll.vote.failed", "chat.archive", "call.received", "call.accepted", "call.rejected",
    "label.upsert", "label.deleted", "label.chat.added", "label.chat.deleted", "event.response",
    "event.response.failed", "engine.event",
)
WILDCARD = "*"
# "*" means every event except these (WAHAEventsWild in the source).
NOT_IN_WILDCARD = frozenset({"state.change", "engine.event"})
RETRY_POLICIES = ("constant", "linear", "exponential")

# Known SessionConfig fields; anything else is stripped like NestJS's whitelist does.
CONFIG_FIELDS = ("webhooks", "metadata", "proxy", "debug", "ignore", "client", "noweb", "gows", "webjs")


def generate_session_name() -> str:
    return f"session_{str(ULID()).lower()}"


def check_session_name(name: Any, errors: list[str]) -> None:
    if not isinstance(name, str):
        errors.append("name must be a string")
        return
    if len(name) > NAME_MAX:
        errors.append(f"name must be shorter than or equal to {NAME_MAX} characters")
    if not NAME_RE.match(name):
        errors.append(f"name must match /{NAME_PATTERN}/ regular expression")


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _normalize_webhook(index: int, hook: Any, errors: list[str]) -> dict[str, Any] | None:
    prefix = f"config.webhooks.{index}."
    if not isinstance(hook, dict):
        errors.append(f"nested property config.webhooks.{index} must be either object or array")
        return None
    if not _is_url(hook.get("url")):
        errors.append(prefix + "url must be a URL address")
    events = hook.get("events")
    if not isinstance(events, list):
        errors.append(prefix + "events must be an array")
    else:
        allowed = (*EVENTS, WILDCARD)
        if any(not isinstance(e, str) or e not in allowed for e in events):
            errors.append(prefix + "each value in events must be one of the following values: "
                          + ", ".join(allowed))

    hmac_cfg = hook.get("hmac")
    if hmac_cfg is not None:
        if not isinstance(hmac_cfg, dict):
            errors.append(prefix + "nested property hmac must be either object or array")
            hmac_cfg = None
        elif hmac_cfg.get("key") is not None and not isinstance(hmac_cfg.get("key"), str):
            errors.append(prefix + "hmac.key must be a string")
        else:
            hmac_cfg = {"key": hmac_cfg.get("key")}

    retries = hook.get("retries")
    if retries is not None:
        if not isinstance(retries, dict):
            errors.append(prefix + "nested property retries must be either object or array")
            retries = None
        else:
            policy = retries.get("policy")
            if policy is not None and policy not in RETRY_POLICIES:
                errors.append(prefix + "retries.policy must be one of the following values: "
                              + ", ".join(RETRY_POLICIES))
            delay = retries.get("delaySeconds")
            if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0):
                errors.append(prefix + "retries.delaySeconds must be a non-negative number")
            attempts = retries.get("attempts")
            if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0):
                errors.append(prefix + "retries.attempts must be a non-negative integer")
            retries = {"delaySeconds": delay, "attempts": attempts, "policy": policy}

    headers = hook.get("customHeaders")
    if headers is not None:
        if not isinstance(headers, list) or not all(
            isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str)
            for h in headers
        ):
            errors.append(prefix + "customHeaders must be an array of {name, value} strings")
            headers = None
        else:
            headers = [{"name": h["name"], "value": h["value"]} for h in headers]

    return {
        "url": hook.get("url"),
        "events": list(events) if isinstance(events, list) else [],
        "hmac": hmac_cfg,
        "retries": retries,
        "customHeaders": headers,
    }


def normalize_config(config: Any) -> dict[str, Any]:
    """Validate a SessionConfig and return it the way WAHA echoes it (absent parts as null)."""
    errors: list[str] = []
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValidationFailed(["nested property config must be either object or array"])

    webhooks_in = config.get("webhooks")
    webhooks: list[dict[str, Any]] = []
    if webhooks_in is not None:
        if not isinstance(webhooks_in, list):
            errors.append("config.webhooks must be an array")
        else:
            for i, hook in enumerate(webhooks_in):
                normalized = _normalize_webhook(i, hook, errors)
                if normalized is not None:
                    webhooks.append(normalized)

    metadata = config.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        errors.append("config.metadata must be an object with string keys and string values")

    debug = config.get("debug", False)
    if not isinstance(debug, bool):
        errors.append("config.debug must be a boolean value")

    proxy = config.get("proxy")
    if proxy is not None and not (isinstance(proxy, dict) and isinstance(proxy.get("server"), str)):
        errors.append("config.proxy.server must be a string")

    for key in ("ignore", "client", "noweb", "gows", "webjs"):
        value = config.get(key)
        if value is not None and not isinstance(value, dict):
            errors.append(f"nested property config.{key} must be either object or array")

    if errors:
        raise ValidationFailed(errors)

    out: dict[str, Any] = {
        "metadata": dict(metadata) if metadata is not None else None,
        "proxy": proxy,
        "debug": debug,
        "webhooks": webhooks,
    }
    for key in ("ignore", "client", "noweb", "gows", "webjs"):
        if config.get(key) is not None:
            out[key] = config[key]
    return out


def webhook_wants(hook: dict[str, Any], event: str) -> bool:
    events = hook.get("events") or []
    if event in events:
        return True
    return WILDCARD in events and event not in NOT_IN_WILDCARD

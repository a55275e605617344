"""Injected faults: failing API answers, added latency, duplicated webhook deliveries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .errors import ValidationFailed, text_body, unhandled_body


@dataclass
class Faults:
    status: int | None = None
    rate: float = 0.0
    latency_ms: int = 0
    duplicate_webhooks: int = 0
    # Only API calls of these sessions are failed or delayed (None: every call).
    sessions: frozenset[str] | None = None
    # Only API calls whose path starts with one of these are failed or delayed (None: every path).
    paths: tuple[str, ...] | None = None
    # How many more matching calls fail; None: no limit. Counts failures only, not delays.
    times: int | None = None
    retry_after: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rate": self.rate if self.status is not None else None,
            "latencyMs": self.latency_ms,
            "duplicateWebhooks": self.duplicate_webhooks,
            "sessions": sorted(self.sessions) if self.sessions is not None else None,
            "paths": list(self.paths) if self.paths is not None else None,
            "times": self.times,
            "retryAfter": self.retry_after,
        }

    def applies_to(self, session: str | None, path: str = "") -> bool:
        return ((self.sessions is None or session in self.sessions)
                and (self.paths is None or any(path.startswith(p) for p in self.paths)))

    def should_fail(self, session: str | None = None, path: str = "") -> bool:
        """Whether this call fails; a failure counts against `times`."""
        if self.status is None or self.rate <= 0 or self.times == 0 or not self.applies_to(session, path):
            return False
        if random.random() >= self.rate:
            return False
        if self.times is not None:
            self.times -= 1
        return True

    def latency(self, session: str | None = None, path: str = "") -> float:
        """Seconds to hold an API call of `session` on `path` before answering it."""
        return self.latency_ms / 1000 if self.applies_to(session, path) else 0.0

    def failure(self, path: str, method: str, version: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        status = self.status or 500
        headers: dict[str, str] = {}
        if status == 500:
            body = unhandled_body(path, method, "Injected fault (waha-emulator)", version=version)
        elif status == 429:
            # NestJS's ThrottlerGuard answer.
            body = {"message": "ThrottlerException: Too Many Requests", "statusCode": 429}
            headers["Retry-After"] = str(self.retry_after)
        else:
            body = text_body(status, "Injected fault (waha-emulator)")
            if status == 503:
                headers["Retry-After"] = str(self.retry_after)
        return status, body, headers


def _non_negative_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_faults(body: Any) -> Faults:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ValidationFailed(["body must be an object"])
    errors: list[str] = []
    status = body.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
        errors.append("status must be an integer HTTP error status (400-599)")
    rate = body.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1):
        errors.append("rate must be a number between 0 and 1")
    latency = body.get("latencyMs") or 0
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        errors.append("latencyMs must be a non-negative number")
    dup = body.get("duplicateWebhooks") or 0
    if not _non_negative_int(dup):
        errors.append("duplicateWebhooks must be a non-negative integer")
    sessions = body.get("sessions")
    if sessions is not None and not _str_list(sessions):
        errors.append("sessions must be a list of session names")
    paths = body.get("paths")
    if paths is not None and not (_str_list(paths) and all(p.startswith("/") for p in paths)):
        errors.append("paths must be a list of path prefixes starting with /")
    times = body.get("times")
    if times is not None and not _non_negative_int(times):
        errors.append("times must be a non-negative integer")
    retry_after = body.get("retryAfter", 1)
    if not _non_negative_int(retry_after):
        errors.append("retryAfter must be a non-negative integer (seconds)")
    if errors:
        raise ValidationFailed(errors)
    return Faults(
        status=status,
        rate=(1.0 if rate is None else float(rate)) if status is not None else 0.0,
        latency_ms=int(latency),
        duplicate_webhooks=dup,
        sessions=frozenset(sessions) if sessions is not None else None,
        paths=tuple(paths) if paths is not None else None,
        times=times,
        retry_after=retry_after,
    )

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

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rate": self.rate if self.status is not None else None,
            "latencyMs": self.latency_ms,
            "duplicateWebhooks": self.duplicate_webhooks,
            "sessions": sorted(self.sessions) if self.sessions is not None else None,
        }

    def applies_to(self, session: str | None) -> bool:
        return self.sessions is None or session in self.sessions

    def should_fail(self, session: str | None = None) -> bool:
        return (
            self.status is not None and self.rate > 0 and self.applies_to(session) and random.random() < self.rate
        )

    def latency(self, session: str | None = None) -> float:
        """Seconds to hold an API call of `session` before answering it."""
        return self.latency_ms / 1000 if self.applies_to(session) else 0.0

    def failure(self, path: str, method: str, version: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        status = self.status or 500
        headers: dict[str, str] = {}
        if status == 500:
            body = unhandled_body(path, method, "Injected fault (waha-emulator)", version=version)
        elif status == 429:
            body = {"message": "ThrottlerException: Too Many Requests", "statusCode": 429}
            headers["Retry-After"] = "1"
        else:
            body = text_body(status, "Injected fault (waha-emulator)")
            if status == 503:
                headers["Retry-After"] = "1"
        return status, body, headers


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
    latency = body.get("latencyMs", 0)
    if latency is None:
        latency = 0
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        errors.append("latencyMs must be a non-negative number")
    dup = body.get("duplicateWebhooks", 0)
    if dup is None:
        dup = 0
    if isinstance(dup, bool) or not isinstance(dup, int) or dup < 0:
        errors.append("duplicateWebhooks must be a non-negative integer")
    sessions = body.get("sessions")
    if sessions is not None and (not isinstance(sessions, list) or not all(isinstance(n, str) for n in sessions)):
        errors.append("sessions must be a list of session names")
    if errors:
        raise ValidationFailed(errors)
    return Faults(
        status=status,
        rate=(1.0 if rate is None else float(rate)) if status is not None else 0.0,
        latency_ms=int(latency),
        duplicate_webhooks=dup,
        sessions=frozenset(sessions) if sessions is not None else None,
    )

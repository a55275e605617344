"""Whether every service is ready (`/readyz` 200), and when one is not after a while: which, why, and its log.

A service answers `/healthz` as soon as it runs, but `/readyz` only once its broker, database and
WAHA connections are usable (503 `{"status": "unavailable", "failing": [...]}` until then). Saying
"running" on `/healthz` alone would hand the user a system that answers every call with 503.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

PROBE_TIMEOUT = 3.0
PROGRESS_EVERY = 5.0  # seconds between "still waiting for ..." lines
LOG_TAIL = 20_000  # characters of a log read for its last warning


class NotReady(RuntimeError):
    """Some service was not ready in time; the message is the whole report."""


@dataclass(frozen=True)
class Verdict:
    name: str
    ready: bool
    reason: str
    log: Path | None = None


def probe(client: httpx.Client, name: str, base_url: str, log: Path | None = None) -> Verdict:
    try:
        r = client.get(f"{base_url}/readyz", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        return Verdict(name, False, f"/readyz does not answer ({type(exc).__name__})", log)
    if r.status_code == 200:
        return Verdict(name, True, "ready", log)
    try:
        failing = r.json().get("failing") or []
    except ValueError:
        failing = []
    because = f", failing: {', '.join(map(str, failing))}" if failing else ""
    return Verdict(name, False, f"/readyz answers {r.status_code}{because}", log)


def wait_ready(services: dict[str, tuple[str, Path | None]], timeout: float,
               say: Callable[[str], None] | None = None) -> list[Verdict]:
    """Probe every service (name -> base URL, log) until all are ready or `timeout` is over;
    answer those still not ready (empty: all are)."""
    deadline = time.monotonic() + timeout
    next_progress = time.monotonic() + PROGRESS_EVERY
    with httpx.Client() as client:
        while True:
            pending = [v for v in (probe(client, n, url, log) for n, (url, log) in services.items()) if not v.ready]
            now = time.monotonic()
            if not pending or now >= deadline:
                return pending
            if say is not None and now >= next_progress:
                say("   still waiting for: " + "; ".join(f"{v.name} ({v.reason})" for v in pending))
                next_progress = now + PROGRESS_EVERY
            time.sleep(0.2)


def last_warning(log: Path | None) -> str | None:
    """The service's own last WARNING or ERROR line: usually what it could not reach, and why."""
    if log is None or not log.exists():
        return None
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - LOG_TAIL))
        tail = f.read().decode(errors="replace").splitlines()
    return next((line.strip() for line in reversed(tail) if " WARNING " in line or " ERROR " in line), None)


def report(pending: list[Verdict], timeout: float) -> str:
    lines = [f"not ready after {timeout:g} s:"]
    for verdict in pending:
        lines.append(f"  {verdict.name}: {verdict.reason}")
        if warning := last_warning(verdict.log):
            lines.append(f"    its last warning: {warning}")
        if verdict.log is not None:
            lines.append(f"    log: {verdict.log}")
    return "\n".join(lines)

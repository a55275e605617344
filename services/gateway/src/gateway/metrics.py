"""Prometheus metrics of the gateway: HTTP requests by route and status, RPC round trips."""

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "gateway_http_request_duration_seconds", "HTTP request duration", ["method", "route", "status"]
)
RPC_REQUESTS = Counter(
    "gateway_rpc_requests_total", "Requests sent over RabbitMQ, by outcome", ["type", "outcome"]
)
RPC_DURATION = Histogram("gateway_rpc_duration_seconds", "RabbitMQ request/reply round trip", ["type"])
LIVE_SOCKETS = Gauge("gateway_live_sockets", "Open live-event WebSockets")
LIVE_FRAMES = Counter("gateway_live_frames_total", "Events sent to live-event WebSockets")
LIVE_CLOSED = Counter("gateway_live_closed_total", "Live-event WebSockets ended, by reason", ["reason"])


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths are bucketed together so scanners cannot blow up label cardinality.
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Pure ASGI, so it neither buffers responses nor breaks streaming."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children, looked up once per (method, route, status): `labels()` takes a lock
        # and builds its key on every call. Bounded: routes are the app's own (or "unmatched").
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def _record(self, labels: tuple[str, str, str], seconds: float) -> None:
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = (HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record((scope["method"], _route_of(scope), str(status)), time.perf_counter() - started)

"""`GET /api/v1/waha/status` ahead of FastAPI: the read that clients poll, answered from the read
model (`status_cache`) with nothing between uvicorn and it but the metrics.

Under load FastAPI's layers (its telemetry and body-limit wrappers, error middlewares, routing,
dependency resolution, `Request`) cost more CPU than the read itself (docs/benchmarks.md, issue 19
fix 21). So `StatusFirstApp` hands this one request to `StatusEndpoint`, which does what the route
and the guard did, in their order, with the same answers: the token (401 with `WWW-Authenticate`),
the declared body size (400, 413), then the status (its 429, 502, 503 and 504 as the bus raises
them) as the JSON the read model encoded, and a logged 500 for anything unexpected. The FastAPI
route stays registered: it documents the request in the OpenAPI, and answers what does not come
this way (another method: 405; a trailing slash: FastAPI's redirect).
"""

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from fleet_shared.http import ApiError, error_response, unexpected_error

from .bus import Bus
from .guard import Admission

STATUS_PATH = "/api/v1/waha/status"
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class StatusEndpoint:
    """The ASGI app of `GET /api/v1/waha/status`."""

    def __init__(self, route: BaseRoute, admission: Admission, bus: Bus) -> None:
        self._route = route
        self._admission = admission
        self._bus = bus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route  # what the metrics label it with
        try:
            principal, _, _ = self._admission.admit(scope, Headers(scope=scope))
            body = await self._bus.status(principal.user_id)
        except Exception as exc:  # ahead of FastAPI's error middlewares, the last resort is here
            error = exc if isinstance(exc, ApiError) else unexpected_error(exc)
            await error_response(error.status, error.code, error.message, error.headers)(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode()), _JSON_CONTENT_TYPE]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class StatusFirstApp(FastAPI):
    """FastAPI, except that `GET /api/v1/waha/status` goes straight to `status_app` once it is set."""

    status_app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.status_app is not None
            and scope["type"] == "http"
            and scope["path"] == STATUS_PATH
            and scope["method"] == "GET"
        ):
            await self.status_app(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

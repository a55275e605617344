"""Before any route reads a byte of its body: the caller is authenticated, and the body fits the
route's limit (a declared size at once, a streamed one as it arrives).

FastAPI reads and parses a body before it resolves a route's dependencies, the token check among
them, so without this an anonymous 100 MiB body would be read whole to be answered 401.
"""

from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet_shared.http import ApiError, error_response

from .auth import PRINCIPAL_STATE, Principal, TokenVerifier, current_principal, principal_from_header

API_PREFIX = "/api/v1/"
UPLOAD_PATH = "/api/v1/waha/messages"
# A multipart upload's boundaries and form fields, around its file.
MULTIPART_OVERHEAD = 64 * 1024


class Admission:
    """What a request must pass before its route reads a byte of its body: the caller's token, and a
    declared size within the route's limit (`RequestGuard`, and `status_route` ahead of it)."""

    def __init__(self, verifier: TokenVerifier, *, json_max_bytes: int, media_max_bytes: int) -> None:
        self._verifier = verifier
        self._json_max = json_max_bytes
        self._media_max = media_max_bytes

    def admit(self, scope: Scope, headers: Headers) -> tuple[Principal, int, ApiError]:
        """The caller's principal, the body's limit and the refusal past it; or `ApiError` (401, 400, 413)."""
        principal = principal_from_header(self._verifier, headers.get("authorization"))
        limit, too_large = self._limit(scope, headers)
        _check_declared(headers, limit, too_large)
        return principal, limit, too_large

    def _limit(self, scope: Scope, headers: Headers) -> tuple[int, ApiError]:
        if (
            scope["method"] == "POST" and scope["path"] == UPLOAD_PATH
            and headers.get("content-type", "").startswith("multipart/form-data")
        ):
            message = f"the file is over the {self._media_max}-byte limit (MEDIA_MAX_BYTES)"
            return self._media_max + MULTIPART_OVERHEAD, ApiError(413, "media_too_large", message)
        message = f"the body is over the {self._json_max}-byte limit (API_MAX_BODY_BYTES)"
        return self._json_max, ApiError(413, "payload_too_large", message)


class RequestGuard:
    def __init__(self, app: ASGIApp, admission: Admission, *, routes: list[BaseRoute]) -> None:
        """`routes`: the API's routes (its routers' `routes`); those that take the caller's token are guarded."""
        self.app = app
        self._admission = admission
        self._token_routes = [r for r in routes if _needs_token(r)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._token_route(scope) if scope["type"] == "http" and scope["path"].startswith(API_PREFIX) else None
        if route is None:  # not an API route that takes a token: the router answers (404, 405, /docs...)
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # what the metrics label a refusal with
        try:
            principal, limit, too_large = self._admission.admit(scope, Headers(scope=scope))
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, _capped(receive, limit, too_large), send)

    def _token_route(self, scope: Scope) -> BaseRoute | None:
        """The route `scope` goes to, if it is one that needs the caller's token."""
        for route in self._token_routes:
            if route.matches(scope)[0] is Match.FULL:
                return route
        return None


def _needs_token(route: Any) -> bool:
    """Whether a route depends (at any depth) on `current_principal`."""
    pending = [route.dependant] if getattr(route, "dependant", None) is not None else []
    while pending:
        dependant = pending.pop()
        if dependant.call is current_principal:
            return True
        pending.extend(dependant.dependencies)
    return False


def _check_declared(headers: Headers, limit: int, too_large: ApiError) -> None:
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise ApiError(400, "invalid_content_length", "Content-Length must be a number of bytes")
    if int(declared) > limit:
        raise too_large


def _capped(receive: Receive, limit: int, too_large: ApiError) -> Receive:
    """`receive`, refusing (413) a body that streams past `limit`."""
    received = 0

    async def capped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(too_large.status, too_large.message)
        return message

    return capped

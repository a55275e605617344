"""What every service's HTTP side shares: JSON errors, /healthz, /readyz, /metrics, serving."""

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import describe
from .redact import RedactSecrets
from .request_deadlines import deadline_protocol

if TYPE_CHECKING:
    import uvicorn

    from .settings import FleetSettings

ReadyCheck = Callable[[], Awaitable[bool]]
READY_CHECK_TIMEOUT = 2.0


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def unexpected_error(exc: BaseException) -> ApiError:
    """What answers an error nobody handled: logged with its traceback, a JSON 500 for the client."""
    logging.getLogger("fleet").error("unhandled error", exc_info=exc)
    return ApiError(500, "internal_error", "internal error")


_STATUS_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", describe(exc, skip=("body",)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _STATUS_CODES.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        error = unexpected_error(exc)
        return error_response(error.status, error.code, error.message)


def ops_router(checks: dict[str, ReadyCheck], *, before_metrics: Sequence[Callable[[], Awaitable[None]]] = ()) -> APIRouter:
    """`/healthz`, `/readyz` (every check passes) and `/metrics` (after `before_metrics` refreshed their gauges)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        failing = []
        for name, check in checks.items():
            try:
                ok = await asyncio.wait_for(check(), READY_CHECK_TIMEOUT)
            except Exception:  # a failing probe is exactly what readyz reports
                ok = False
            if not ok:
                failing.append(name)
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics")
    async def metrics() -> Response:
        for refresh in before_metrics:
            await refresh()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def configure_logging(level: str) -> None:
    """One handler for every logger (uvicorn's too: `serve` leaves its loggers to propagate here),
    with secrets redacted from each line."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
    for noisy in ("aio_pika", "aiormq", "pymongo", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """For a service's lifespan, once started: what is alive then (modules, the app, its routes,
    models and connections) lives as long as the process, so it is moved out of the garbage
    collector's sight. Otherwise each full collection under load walks ~100k objects again: a
    45-55 ms pause in the middle of requests every few 10k of them (profiled in webhook-ingest)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def server_config(app: FastAPI, settings: "FleetSettings") -> "uvicorn.Config":
    """How every service is served: on HOST:PORT, with deadlines for slow clients, no access log
    (metrics count requests), secrets redacted from uvicorn's lines (`configure_logging`)."""
    import uvicorn

    # proxy_headers off: no service sits behind a proxy on 127.0.0.1 (the only address uvicorn
    # trusts by default), so the middleware would only cost CPU on every request.
    # log_config=None: uvicorn's loggers keep no handlers of their own, so its lines go through
    # the redacting handler.
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=False,
        timeout_graceful_shutdown=20, proxy_headers=False, log_config=None,
        http=deadline_protocol(settings.http_header_timeout.total_seconds(), settings.http_body_timeout.total_seconds()),
    )


def serve(app: FastAPI, settings: "FleetSettings") -> None:
    import uvicorn

    configure_logging(settings.log_level)
    server = uvicorn.Server(server_config(app, settings))
    server.run()
    if not server.started:
        raise SystemExit(3)  # as `uvicorn.run`: start-up failed (the lifespan raised, the port was taken)

"""The web console at `/`: three static files from `console/`, plain JS, nothing fetched from elsewhere.

Explicit routes rather than a catch-all mount at `/`, so no API route can ever be shadowed by it.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from fleet_shared.http import ApiError

CONSOLE_DIR = Path(__file__).parent / "console"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
HEADERS = {
    # The page may talk to this origin only (REST and the WebSocket) and show data: images (the QR).
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/console/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise ApiError(404, "not_found", "no such console file")
    return FileResponse(CONSOLE_DIR / name, media_type=ASSETS[name], headers=HEADERS)

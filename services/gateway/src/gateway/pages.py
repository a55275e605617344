"""What every page the gateway serves to a browser shares (the console at `/`, the API docs at `/docs`):
static files from this origin only, with headers that keep the page from loading or running anything else.

Explicit routes, one per page and one for its named files, rather than a catch-all mount: no API
route can be shadowed, and no path is ever built from what the client asked for.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from fleet_shared.http import ApiError

HEADERS = {
    # The page may talk to this origin only (REST and the WebSocket) and show data: images (the QR,
    # Swagger UI's icons) and blob: files (the console fetches a message's file with the user's token
    # and shows it from an object URL). No inline script or style, nothing from another host.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def page_file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


def static_page(url: str, page: Path, files_at: str, files: dict[str, Path], what: str) -> APIRouter:
    """`page` at `url`, and each of `files` (name -> path) at `files_at/<name>`; any other name is a JSON 404."""
    router = APIRouter(include_in_schema=False)

    @router.get(url)
    async def index() -> FileResponse:
        return page_file(page)

    @router.get(files_at + "/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in files:
            raise ApiError(404, "not_found", f"no such {what} file")
        return page_file(files[name])

    return router

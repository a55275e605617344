"""What every page the gateway serves to a browser shares (the console at `/`, the API docs at `/docs`):
static files from this origin only, with headers that keep the page from loading or running anything else."""

from pathlib import Path

from fastapi.responses import FileResponse

from fleet_shared.http import ApiError

HEADERS = {
    # The page may talk to this origin only (REST and the WebSocket) and show data: images (the QR,
    # Swagger UI's icons). No inline script or style, nothing from another host.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def page_file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


def one_of(files: dict[str, Path], name: str, what: str) -> FileResponse:
    """`files[name]`, or the JSON 404 of every unknown path (never a path built from `name`)."""
    if name not in files:
        raise ApiError(404, "not_found", f"no such {what} file")
    return page_file(files[name])

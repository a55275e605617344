"""The web console at `/`: three static files from `console/`, plain JS, nothing fetched from elsewhere.

Explicit routes rather than a catch-all mount at `/`, so no API route can ever be shadowed by it.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from .pages import one_of, page_file

CONSOLE_DIR = Path(__file__).parent / "console"
ASSETS = {name: CONSOLE_DIR / name for name in ("app.js", "app.css")}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return page_file(CONSOLE_DIR / "index.html")


@router.get("/console/{name}")
async def asset(name: str) -> FileResponse:
    return one_of(ASSETS, name, "console")

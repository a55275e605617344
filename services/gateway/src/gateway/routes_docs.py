"""The API documentation at `/docs`: Swagger UI served by the gateway itself, so it works offline.

FastAPI's own `/docs` loads Swagger UI from a CDN (a blank page without the internet) and starts it
with an inline script, which the console's Content-Security-Policy forbids. Here the page and its
starter script come from `docs_page/`, Swagger UI's files from the fastapi-offline package, all
with the console's headers (`pages.py`).
"""

from pathlib import Path

import fastapi_offline

from .pages import static_page

PAGE_DIR = Path(__file__).parent / "docs_page"
SWAGGER_UI_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS = {
    "docs.js": PAGE_DIR / "docs.js",
    **{name: SWAGGER_UI_DIR / name for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")},
}

router = static_page("/docs", PAGE_DIR / "index.html", "/docs", ASSETS, "documentation")

"""The web console at `/`: four static files from `console/`, plain JS, nothing fetched from elsewhere."""

from pathlib import Path

from .pages import static_page

CONSOLE_DIR = Path(__file__).parent / "console"

router = static_page("/", CONSOLE_DIR / "index.html", "/console",
                     {name: CONSOLE_DIR / name for name in ("app.js", "pairing.js", "app.css")}, "console")

"""The web console at `/`: its page and the modules and style beside it in `console/`, plain JS (ES
modules, no build step), nothing fetched from elsewhere."""

from pathlib import Path

from .pages import static_page

CONSOLE_DIR = Path(__file__).parent / "console"
# Every module and stylesheet in the folder, by name, listed once at start-up.
CONSOLE_FILES = {path.name: path for path in sorted(CONSOLE_DIR.iterdir()) if path.suffix in (".js", ".css")}

router = static_page("/", CONSOLE_DIR / "index.html", "/console", CONSOLE_FILES, "console")

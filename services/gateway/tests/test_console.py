"""The web console's files as the gateway serves them (the console itself: tests/browser)."""

import re

from gateway.routes_console import CONSOLE_DIR


async def test_the_console_is_served_at_the_root(offline_gateway):
    r = await offline_gateway.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    # Files fetched by the page's own modules (blob: object URLs of the user's media) may be shown.
    assert "img-src 'self' data: blob:" in r.headers["content-security-policy"]
    assert "media-src blob:" in r.headers["content-security-policy"]
    assert 'type="module" src="/console/app.js"' in r.text and 'href="/console/app.css"' in r.text
    modules = sorted(p.name for p in CONSOLE_DIR.glob("*.js"))
    assert {"app.js", "media.js", "live.js"} <= set(modules)
    for name in ["app.css", *modules]:
        r = await offline_gateway.get(f"/console/{name}")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name


def test_every_module_the_console_imports_is_served():
    served = {p.name for p in CONSOLE_DIR.iterdir() if p.suffix in (".js", ".css")}
    for path in CONSOLE_DIR.glob("*.js"):
        for imported in re.findall(r'from "\./([\w-]+\.js)"', path.read_text()):
            assert imported in served, (path.name, imported)


async def test_only_the_console_files_are_served(offline_gateway):
    for path in ("/console/index.html", "/console/..%2Froutes_console.py", "/console/", "/nothing-here"):
        r = await offline_gateway.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


def test_nothing_is_fetched_from_another_origin():
    for path in CONSOLE_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text, path.name

"""The API documentation page at /docs as the gateway serves it (rendered in Chromium: tests/browser)."""

import re

from gateway.routes_docs import ASSETS, PAGE_DIR


async def test_the_docs_page_and_its_files_come_from_the_gateway_with_the_console_headers(offline_gateway):
    r = await offline_gateway.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    assert r.headers["x-content-type-options"] == "nosniff"
    referenced = set(re.findall(r'(?:src|href)="([^"]+)"', r.text))
    assert referenced == {"/docs/favicon.png", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/docs.js"}
    for path, kind in (("swagger-ui-bundle.js", "text/javascript"), ("docs.js", "text/javascript"),
                       ("swagger-ui.css", "text/css"), ("favicon.png", "image/png")):
        r = await offline_gateway.get(f"/docs/{path}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
        assert "default-src 'none'" in r.headers["content-security-policy"]


async def test_only_the_docs_files_are_served(offline_gateway):
    for path in ("/docs/index.html", "/docs/..%2Froutes_docs.py", "/docs/redoc.standalone.js", "/redoc", "/docs/oauth2-redirect"):
        r = await offline_gateway.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


def test_the_page_names_no_other_origin():
    for path in PAGE_DIR.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text(), re.I), path.name
    assert all(path.exists() for path in ASSETS.values())

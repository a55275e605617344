"""Write the API documents from the code: docs/openapi.json (the gateway) and docs/asyncapi.json (the broker).

    uv run python scripts/gen_api_docs.py           # (re)write both; `make docs` does the same
    uv run python scripts/gen_api_docs.py --check   # exit 1 when a committed document differs from the code

tests/test_api_docs.py runs the check, so a change to a route, a contract or the topology that is
not reflected in docs/ fails the tests.
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet_shared.asyncapi import build_asyncapi
from gateway.app import create_app
from gateway.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOCS_PREFIX = "wa"  # BROKER_PREFIX's default: the exchange names the documents show


def openapi() -> dict[str, Any]:
    # Settings only wire the app; none of them changes the document.
    settings = Settings(environment="dev", jwt_secret="docs-only-" + "x" * 32, broker_prefix=DOCS_PREFIX)
    return create_app(settings).openapi()


def asyncapi() -> dict[str, Any]:
    return build_asyncapi(DOCS_PREFIX)


DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {"openapi.json": openapi, "asyncapi.json": asyncapi}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale() -> list[str]:
    """The documents whose committed file is missing or differs from what the code generates."""
    return [
        name for name, build in DOCUMENTS.items()
        if not (DOCS / name).exists() or (DOCS / name).read_text() != render(build())
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")
    args = parser.parse_args(argv)
    if args.check:
        drifted = stale()
        for name in drifted:
            print(f"docs/{name} is out of date with the code: run `make docs` (uv run python scripts/gen_api_docs.py)")
        return 1 if drifted else 0
    for name, build in DOCUMENTS.items():
        (DOCS / name).write_text(render(build()))
        print(f"wrote docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

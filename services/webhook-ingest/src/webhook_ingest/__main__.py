"""`python -m webhook_ingest`: serve on HOST:PORT (default 127.0.0.1:8081)."""

import sys

from pydantic import ValidationError

from fleet_shared.http import serve

from .app import create_app
from .config import Settings


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}" for e in exc.errors())
        sys.exit(f"webhook-ingest: invalid settings: {problems}")
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()

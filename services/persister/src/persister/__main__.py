"""`python -m persister`: serve the persister on HOST:PORT (default 127.0.0.1:8083)."""

from fleet_shared.http import serve

from .app import create_app
from .config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()

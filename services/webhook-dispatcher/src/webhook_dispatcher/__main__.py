"""`python -m webhook_dispatcher`: serve the dispatcher on HOST:PORT (default 127.0.0.1:8084)."""

from fleet_shared.http import serve

from .app import create_app
from .config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()

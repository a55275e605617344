"""`python -m session_orchestrator`: consume the command partitions; serve /healthz /readyz /metrics
on HOST:PORT (default 8082)."""

from fleet_shared.http import serve

from .app import create_app
from .config import Settings


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()

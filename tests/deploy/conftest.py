"""Shared helpers of the deploy/ checks: where things are, and running the validators."""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
RENDER_DEFINITIONS = DEPLOY / "rabbitmq" / "render-definitions.sh"
K8S = DEPLOY / "k8s"

# The five services: compose/k8s name -> (python module, RabbitMQ user, password variable in .env).
SERVICES = {
    "gateway": ("gateway", "gateway", "RABBITMQ_GATEWAY_PASSWORD"),
    "session-orchestrator": ("session_orchestrator", "session-orchestrator", "RABBITMQ_ORCHESTRATOR_PASSWORD"),
    "webhook-ingest": ("webhook_ingest", "webhook-ingest", "RABBITMQ_INGEST_PASSWORD"),
    "persister": ("persister", "persister", "RABBITMQ_PERSISTER_PASSWORD"),
    "webhook-dispatcher": ("webhook_dispatcher", "webhook-dispatcher", "RABBITMQ_DISPATCHER_PASSWORD"),
}
DEPLOY_SECRETS = (
    "JWT_SECRET",
    "WAHA_API_KEY",
    "WEBHOOK_HMAC_KEY",
    "RABBITMQ_ADMIN_PASSWORD",
    *(password for _, _, password in SERVICES.values()),
    "MINIO_ROOT_PASSWORD",
    "S3_SECRET_ACCESS_KEY",
)


def tool(name: str) -> str:
    """A validator installed with the dev dependencies (next to this interpreter), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `uv sync` (it is a dev dependency in pyproject.toml)")
    return found


def run(args: list[str], *, ok: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a tool; with ok=True fail the test, showing its output, unless it exits 0."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    if ok and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def deploy_secrets() -> dict[str, str]:
    """What an operator puts in .env: a long random value for every secret."""
    return {name: secrets.token_hex(24) for name in DEPLOY_SECRETS}


def render_definitions(env: dict[str, str], out: Path, template: Path = DEFINITIONS) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(RENDER_DEFINITIONS), str(template), str(out)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )

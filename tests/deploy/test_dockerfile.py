"""deploy/docker/Dockerfile: lint-clean (hadolint), non-root, and its install step, replayed here
with the same uv commands, yields a virtualenv that runs every service and the emulator without
the dev dependencies."""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from .conftest import DOCKERFILE, ROOT, SERVICES, run, tool


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]


def test_hadolint_finds_nothing():
    run([tool("hadolint"), str(DOCKERFILE)])


def test_hadolint_catches_a_mistake(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = run([tool("hadolint"), str(bad)], ok=False)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_it_is_multi_stage_with_uv_and_runs_as_a_numeric_non_root_user():
    build, runtime = stages()
    assert "uv sync --frozen --no-dev" in build
    assert "uv sync" not in runtime and "pip install" not in runtime, "no build tools in the runtime stage"
    users = re.findall(r"^USER (\S+)$", runtime, re.M)
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert "COPY --from=build /app/.venv /app/.venv" in runtime


def workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob(f"{pattern}/pyproject.toml"))
    return members


def test_the_dependency_layer_copies_every_workspace_members_pyproject():
    text = DOCKERFILE.read_text()
    for member in workspace_members():
        assert f"COPY {member}/pyproject.toml {member}/" in text, f"{member} is missing from the dependency layer"


def build_context(tmp_path: Path) -> Path:
    """What the Dockerfile's COPY lines bring in (Dockerfile.dockerignore leaves tests and caches out)."""
    context = tmp_path / "app"
    context.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, context / name)
    ignore = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", ".pytest_cache")
    for directory in ("shared", "services", "tools"):
        shutil.copytree(ROOT / directory, context / directory, ignore=ignore)
    return context


def test_the_image_install_step_yields_runnable_services(tmp_path):
    uv = shutil.which("uv")
    assert uv, "uv is on the PATH wherever `make test` runs"
    context = build_context(tmp_path)
    venv = tmp_path / "venv"
    # This machine's uv settings (index, certificates) stay; the project environment is ours.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy", "UV_PYTHON_DOWNLOADS": "never"}
    commands = re.findall(r"^\s*(uv sync [^\n\\]+)$", DOCKERFILE.read_text(), re.M)
    assert len(commands) == 2, commands
    for command in commands:
        run([uv, *command.split()[1:], "--python", "3.11"], cwd=context, env=env)
    python = str(venv / "bin" / "python")
    modules = [f"{module}.app" for module, _, _ in SERVICES.values()] + ["waha_emulator.app"]
    check = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
    run([python, "-c", check, *modules], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    dev_only = subprocess.run([python, "-c", "import pytest"], capture_output=True, cwd=tmp_path)
    assert dev_only.returncode != 0, "dev dependencies must stay out of the image"

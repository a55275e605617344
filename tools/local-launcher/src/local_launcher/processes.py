"""Child processes: start, wait until healthy, stop, and restart the ones that crash."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fleet_devtools.localdev import wait_for_port


@dataclass
class Child:
    name: str
    args: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    health_path: str | None = "/healthz"
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self, base_env: dict[str, str], timeout: float = 30.0) -> None:
        self.spawn(base_env)
        self.wait_ready(timeout)

    def spawn(self, base_env: dict[str, str]) -> None:
        env = {**base_env, **self.env}
        out = open(self.log_path, "ab") if self.log_path else None
        # Own process group, so Ctrl-C in the terminal reaches the launcher only, which stops us in order.
        self.process = subprocess.Popen(self.args, env=env, stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        try:
            wait_for_port("127.0.0.1", self.port, timeout, self.process)
            if self.health_path:
                self._wait_healthy(timeout)
        except (RuntimeError, TimeoutError) as exc:
            log = f"; its log: {self.log_path}" if self.log_path else ""
            raise type(exc)(f"{self.name}: {exc}{log}") from exc

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}")
            time.sleep(0.05)
        raise TimeoutError(f"not healthy after {timeout}s")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def base_environment(overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env

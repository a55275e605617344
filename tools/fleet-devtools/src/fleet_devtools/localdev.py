"""Helpers for local runs and tests: free ports, waiting on conditions, an embedded MongoDB-wire server."""

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


async def wait_until(condition: Callable[[], Awaitable[object]], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def secantus_command() -> list[str]:
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    return [exe]


class EmbeddedMongo:
    """A SecantusDB server (MongoDB wire protocol on WiredTiger) as a child process."""

    def __init__(self, port: int | None = None, storage: str = ":memory:", log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.storage = storage
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> "EmbeddedMongo":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        cmd = [*secantus_command(), "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", self.storage, "--log-level", "WARNING"]
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

"""The whole system on one machine: embedded MongoDB, WAHA emulator, and the five services."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleet_devtools.localdev import EmbeddedMongo

from .processes import Child, base_environment, python_module
from .readiness import NotReady, report, wait_ready

DEFAULT_PORTS = {
    "gateway": 8080, "webhook-ingest": 8081, "session-orchestrator": 8082, "persister": 8083, "webhook-dispatcher": 8084,
    "waha-emulator": 3000,
}
SERVICE_MODULES = {
    "persister": "persister",
    "session-orchestrator": "session_orchestrator",
    "webhook-ingest": "webhook_ingest",
    "gateway": "gateway",
    "webhook-dispatcher": "webhook_dispatcher",
}


@dataclass
class StackConfig:
    env: dict[str, str]  # settings every service gets (RABBITMQ_URL, secrets, BROKER_PREFIX...)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    mongodb_url: str | None = None  # None: start an embedded server
    mongo_storage: str = ":memory:"
    waha_url: str | None = None  # None: start the emulator
    emulator_args: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    ready_timeout: float = 30.0  # seconds every service gets, once up, to answer /readyz 200


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.mongo: EmbeddedMongo | None = None
        self.children: dict[str, Child] = {}
        self.env: dict[str, str] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[name]}"

    @property
    def waha_url(self) -> str:
        return self.config.waha_url or self.url("waha-emulator")

    def _log(self, name: str) -> Path | None:
        if self.config.log_dir is None:
            return None
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        return self.config.log_dir / f"{name}.log"

    def start(self, say: Callable[[str], None] | None = None) -> None:
        """Start everything; return once every service is ready, else raise `NotReady` saying which and why."""
        cfg = self.config
        mongodb_url = cfg.mongodb_url
        if mongodb_url is None:
            self.mongo = EmbeddedMongo(storage=cfg.mongo_storage, log_path=self._log("mongodb")).start()
            mongodb_url = self.mongo.url
        self.env = base_environment(
            {
                **cfg.env,
                "MONGODB_URL": mongodb_url,
                "WAHA_URL": self.waha_url,
                "WEBHOOK_URL": f"{self.url('webhook-ingest')}/webhooks/waha",
            }
        )
        if cfg.waha_url is None:
            port = cfg.ports["waha-emulator"]
            args = python_module("waha_emulator", "--host", "127.0.0.1", "--port", str(port), *cfg.emulator_args)
            self._add(Child("waha-emulator", args, port, health_path="/ping", log_path=self._log("waha-emulator")))
        for name, module in SERVICE_MODULES.items():
            port = cfg.ports[name]
            self._add(Child(name, python_module(module), port, env={"PORT": str(port)}, log_path=self._log(name)))
        # All at once: each process spends seconds importing; none needs another to start.
        for child in self.children.values():
            child.spawn(self.env)
        for child in self.children.values():
            child.wait_ready()
        services = {name: (self.url(name), self.children[name].log_path) for name in SERVICE_MODULES}
        pending = wait_ready(services, cfg.ready_timeout, say)
        if pending:
            raise NotReady(report(pending, cfg.ready_timeout))

    def _add(self, child: Child) -> None:
        self.children[child.name] = child

    def restart(self, name: str) -> None:
        child = self.children[name]
        child.stop()
        child.start(self.env)

    def kill(self, name: str) -> None:
        self.children[name].kill()

    def start_again(self, name: str) -> None:
        self.children[name].start(self.env)

    def crashed(self) -> list[Child]:
        return [c for c in self.children.values() if c.process is not None and not c.alive]

    def stop(self) -> None:
        # Services before what they depend on.
        for name in reversed(list(self.children)):
            self.children[name].stop()
        if self.mongo is not None:
            self.mongo.stop()

    def supervise_once(self, say) -> None:
        """Restart every child that died, saying so."""
        for child in self.crashed():
            code = child.process.returncode if child.process else None
            child.restarts += 1
            say(f"!! {child.name} exited with code {code}; restarting it (restart #{child.restarts})")
            time.sleep(min(5.0, 0.5 * child.restarts))
            try:
                child.start(self.env)
                say(f"   {child.name} is back on port {child.port}")
            except (RuntimeError, TimeoutError) as exc:
                say(f"   it failed to start again: {exc}")

"""What every benchmark shares: the context, result rows, processes, load generators, machine facts."""

import asyncio
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import aio_pika
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from fleet_devtools.localdev import EmbeddedMongo, free_port
from local_launcher.processes import Child, base_environment, python_module
from local_launcher.stack import Stack
from local_launcher.throwaway import PARTITIONS, SECRETS, launched, throwaway_config
from local_launcher.tokens import make_token

from .stats import median

LOADGEN_TIMEOUT = 300


@dataclass
class Context:
    rabbitmq_url: str
    log_dir: Path
    quick: bool = False
    runs: int = 3
    say: callable = print
    # A MongoDB server to measure on (`--mongodb-url`); None: each benchmark starts an embedded SecantusDB.
    mongodb_url: str | None = None

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full


@dataclass
class Row:
    """One figure of the results table: the system's median beside the baseline's median."""

    bench: str
    metric: str
    unit: str
    samples: list[float | None]
    baseline_samples: list[float | None] = field(default_factory=list)
    baseline: str = ""  # what the baseline is, for the table
    goal: str = ""  # e.g. "≥ 0.5× baseline", "≤ 25 ms"
    goal_check: callable = None  # (value, ratio) -> bool
    higher_is_better: bool = True
    note: str = ""

    @property
    def value(self) -> float | None:
        return median(self.samples)

    @property
    def baseline_value(self) -> float | None:
        return median(self.baseline_samples) if self.baseline_samples else None

    @property
    def ratio(self) -> float | None:
        v, b = self.value, self.baseline_value
        if v is None or not b:
            return None
        return v / b

    @property
    def met(self) -> bool | None:
        if self.goal_check is None or self.value is None:
            return None
        return bool(self.goal_check(self.value, self.ratio))

    def as_dict(self) -> dict:
        return {
            "bench": self.bench, "metric": self.metric, "unit": self.unit, "value": self.value,
            "samples": self.samples, "baseline": self.baseline, "baseline_value": self.baseline_value,
            "baseline_samples": self.baseline_samples, "ratio": self.ratio, "goal": self.goal, "met": self.met,
            "note": self.note,
        }


def fresh_prefix(tag: str) -> str:
    return f"bench{tag}{uuid.uuid4().hex[:6]}"


def service_env(ctx: Context, prefix: str, **extra: str) -> dict[str, str]:
    return base_environment(
        {
            "ENVIRONMENT": "dev",
            "RABBITMQ_URL": ctx.rabbitmq_url,
            "BROKER_PREFIX": prefix,
            "ORCHESTRATOR_PARTITIONS": str(PARTITIONS),
            "LOG_LEVEL": "INFO",
            **SECRETS,
            **extra,
        }
    )


@contextmanager
def service(ctx: Context, name: str, module: str, env: dict[str, str]) -> Iterator[Child]:
    """One service as its own process, on a free port, stopped afterwards."""
    port = free_port()
    child = Child(name, python_module(module), port, env={"PORT": str(port)}, log_path=ctx.log_dir / f"{name}-{port}.log")
    try:
        child.start(env)  # inside: one that started but never became ready is stopped too
        yield child
    finally:
        child.stop()


@contextmanager
def mongodb(ctx: Context, tag: str) -> Iterator[str]:
    """The URL of the MongoDB-wire server a benchmark writes to: `ctx.mongodb_url`, or an embedded
    SecantusDB started for it and stopped afterwards. On a server of the caller's, a benchmark names
    its databases with `fresh_prefix` and drops them when done (`scratch_database`)."""
    if ctx.mongodb_url is not None:
        yield ctx.mongodb_url
        return
    mongo = EmbeddedMongo(log_path=ctx.log_dir / f"{tag}-mongodb.log").start()
    try:
        yield mongo.url
    finally:
        mongo.stop()


@contextmanager
def scratch_database(url: str, name: str) -> Iterator[str]:
    """The database `name` at `url`, dropped on the way out; leave the block only once whatever
    writes to it has stopped, or a late write creates it again."""
    try:
        yield name
    finally:
        asyncio.run(_drop_database(url, name))


async def _drop_database(url: str, name: str) -> None:
    """A server that cannot be reached is reported, not raised: a clean-up must not hide the error
    that ended a benchmark."""
    client = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        await client.drop_database(name)
    except PyMongoError as exc:
        print(f"could not drop {name} at {url}: {exc}", file=sys.stderr)
    finally:
        await client.close()


async def database_version(url: str) -> str:
    """What the server at `url` says it is (`buildInfo`); raises PyMongoError when it does not answer."""
    client = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        info = await client.admin.command("buildInfo")
    finally:
        await client.close()
    return str(info.get("version", "?"))


@contextmanager
def whole_system(ctx: Context, tag: str, env: dict[str, str] | None = None,
                 mongo_storage: str = ":memory:") -> Iterator[Stack]:
    """The database (`mongodb`), the emulator and the four services as processes under a fresh prefix,
    which also names the system's databases (its own, and GridFS's for media files). An embedded
    SecantusDB keeps its data in memory, or in the directory `mongo_storage`."""
    prefix = fresh_prefix(tag)
    media = f"{prefix}media"
    config = throwaway_config(ctx.rabbitmq_url, ctx.log_dir / f"{tag}-{prefix}",
                              env={"BROKER_PREFIX": prefix, "MONGODB_DATABASE": prefix, "MEDIA_DATABASE": media,
                                   **(env or {})}, mongo_storage=mongo_storage)
    config.mongodb_url = ctx.mongodb_url
    # An embedded server goes with the stack; a server of the caller's keeps the databases until dropped.
    with contextlib.ExitStack() as databases:
        if ctx.mongodb_url:
            databases.enter_context(scratch_database(ctx.mongodb_url, prefix))
            databases.enter_context(scratch_database(ctx.mongodb_url, media))
        with launched(config, ctx.rabbitmq_url) as system:  # the stack stops first
            yield system


def token(user_id: str, *, admin: bool = False) -> str:
    return make_token(SECRETS["JWT_SECRET"], user_id, admin=admin, lifetime=6 * 3600)


def run_loadgen(target: str, spec: dict, timeout: float = LOADGEN_TIMEOUT) -> dict:
    """Run `module:function(spec)` in a load-generator process of its own; answer what it returned."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", target],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
        env=base_environment({}),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator {target} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"load generator {target} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (`/proc/<pid>/stat`); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rabbitmq_pid() -> int | None:
    """RabbitMQ's `beam.smp`, when exactly one runs here (its CPU is shared with whatever else uses it)."""
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if len(found) == 1 else None


def system_pids(system: Stack) -> dict[str, int]:
    """Process name -> pid of every process of the stack: the services, the emulator, SecantusDB, RabbitMQ."""
    pids = {name: child.process.pid for name, child in system.children.items()}
    if system.mongo is not None:
        pids["mongodb (SecantusDB)"] = system.mongo.process.pid
    if (rabbitmq := rabbitmq_pid()) is not None:
        pids["rabbitmq"] = rabbitmq
    return pids


def children_cpu_seconds() -> float:
    """User + system CPU of this process's children that were waited for (load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def purge(url: str, queues: list[str]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in queues:
            queue = await channel.get_queue(name, ensure=False)
            await queue.purge()


async def queue_depth(url: str, name: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count


async def rabbitmq_version(url: str) -> str:
    try:
        connection = await aio_pika.connect(url)
    except Exception:  # only for the report
        return "?"
    async with connection:
        props = connection.transport.connection.server_properties if connection.transport else {}
        raw = props.get("version", "?")
        return raw.decode() if isinstance(raw, bytes) else str(raw)


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def wait_for_low_load(say, threshold: float, deadline_s: float) -> tuple[float, float, float]:
    """Wait (bounded) until the 1-minute load average is under `threshold`; answer the load then."""
    end = time.monotonic() + deadline_s
    load = load_average()
    announced = False
    while load[0] > threshold and time.monotonic() < end:
        if not announced:
            say(f"load average {load[0]:.2f} > {threshold}: waiting up to {deadline_s:.0f}s for a quieter machine")
            announced = True
        time.sleep(5)
        load = load_average()
    return load


def machine_info(rabbitmq_url: str, mongodb_version: str | None = None) -> dict:
    """`mongodb_version`: of the server given with `--mongodb-url`; None: the embedded SecantusDB."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rabbitmq": asyncio.run(rabbitmq_version(rabbitmq_url)),
        **({"mongodb": mongodb_version} if mongodb_version else {"secantusdb": _version("secantusdb")}),
        "aio-pika": _version("aio-pika"),
        "faststream": _version("faststream"),
        "pymongo": _version("pymongo"),
        "uvicorn": _version("uvicorn"),
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "?"

"""The definitions on the real broker: imported (users, permissions, policies) into a vhost of the
test's own, then the whole system runs as processes with each service logged in as its own
least-privilege user, through a whole conversation; and a user stepping outside its service's job
is refused by RabbitMQ."""

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from urllib.parse import urlsplit

import aio_pika
import httpx
import pytest
from aiormq.exceptions import ChannelAccessRefused
from websockets.asyncio.client import connect as ws_connect

from fleet_devtools.localdev import EmbeddedMongo, free_port, wait_until
from fleet_shared.topology import Topology
from fleet_shared.waha import session_webhook
from local_launcher.processes import Child, base_environment, python_module
from local_launcher.tokens import make_token

from .conftest import SERVICES, deploy_secrets, render_definitions

pytestmark = pytest.mark.integration

PREFIX = "wa"  # the permissions are written for the production prefix; the vhost keeps us apart
PARTITIONS = 4
USER = "deployuser"
SESSION = f"wf_{USER}"
PHONE = "15550009999"


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"rabbitmqctl {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def broker(rabbitmq_url, tmp_path_factory):
    """The definitions, imported into a fresh vhost with user names of this run; removed afterwards."""
    host = urlsplit(rabbitmq_url).hostname
    if host not in ("127.0.0.1", "localhost") or shutil.which("rabbitmqctl") is None:
        pytest.skip("needs the local broker and rabbitmqctl to create users (CI has both)")
    run_id = uuid.uuid4().hex[:8]
    vhost = f"waha-fleet-test-{run_id}"
    secrets = deploy_secrets()
    rendered = tmp_path_factory.mktemp("rabbitmq") / "definitions.json"
    result = render_definitions(secrets, rendered)
    assert result.returncode == 0, result.stderr
    defs = json.loads(rendered.read_text())
    names = {u["name"]: f"{u['name']}-{run_id}" for u in defs["users"] if u["name"] != "admin"}
    defs["users"] = [{**u, "name": names[u["name"]]} for u in defs["users"] if u["name"] in names]
    defs["vhosts"] = [{**v, "name": vhost} for v in defs["vhosts"]]
    defs["permissions"] = [
        {**p, "user": names[p["user"]], "vhost": vhost} for p in defs["permissions"] if p["user"] in names
    ]
    defs["policies"] = [{**p, "vhost": vhost} for p in defs["policies"]]
    try:
        # A file any user can read: Debian's rabbitmqctl runs as the rabbitmq user. Test passwords only.
        with tempfile.NamedTemporaryFile("w", dir="/tmp", prefix="waha-fleet-definitions-", suffix=".json") as f:
            json.dump(defs, f)
            f.flush()
            os.chmod(f.name, 0o644)
            rabbitmqctl("import_definitions", f.name)
        # The import runs asynchronously.
        for _ in range(100):
            listed = subprocess.run(
                ["rabbitmqctl", "-q", "list_permissions", "-p", vhost], capture_output=True, text=True
            )
            if sum(name in listed.stdout for name in names.values()) == len(names):
                break
            subprocess.run(["sleep", "0.1"])
        else:
            pytest.fail("the definitions' users never appeared")
        passwords = {u["name"]: u["password"] for u in defs["users"]}
        port = urlsplit(rabbitmq_url).port or 5672
        urls = {
            service: f"amqp://{names[user]}:{passwords[names[user]]}@127.0.0.1:{port}/{vhost}"
            for service, (_, user, _) in SERVICES.items()
        }
        yield {"vhost": vhost, "urls": urls, "secrets": secrets}
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)
        for name in names.values():
            subprocess.run(["rabbitmqctl", "delete_user", name], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def system(broker, tmp_path_factory):
    logs = tmp_path_factory.mktemp("deploy-logs")
    secrets = broker["secrets"]
    ports = {name: free_port() for name in [*SERVICES, "waha-emulator"]}
    mongo = EmbeddedMongo(log_path=logs / "mongodb.log").start()
    common = {
        "ENVIRONMENT": "production",
        "BROKER_PREFIX": PREFIX,
        "ORCHESTRATOR_PARTITIONS": str(PARTITIONS),
        "REQUEST_TIMEOUT": "15s",
        "LOG_LEVEL": "INFO",
        "MONGODB_URL": mongo.url,
        "WAHA_URL": f"http://127.0.0.1:{ports['waha-emulator']}",
        "WEBHOOK_URL": f"http://127.0.0.1:{ports['webhook-ingest']}/webhooks/waha",
        **{name: secrets[name] for name in ("JWT_SECRET", "WAHA_API_KEY", "WEBHOOK_HMAC_KEY")},
        "WAHA_EMULATOR_STARTING_DELAY": "0.1",
        "WAHA_EMULATOR_ACK_DELAY": "0.1",
    }
    env = base_environment(common)
    children = [
        Child(
            "waha-emulator",
            python_module("waha_emulator", "--host", "127.0.0.1", "--port", str(ports["waha-emulator"])),
            ports["waha-emulator"],
            health_path="/ping",
            log_path=logs / "waha-emulator.log",
        ),
    ]
    for service, (module, _, _) in SERVICES.items():
        # /readyz: up only once the service declared the topology and connected as its own user.
        children.append(
            Child(
                service,
                python_module(module),
                ports[service],
                health_path="/readyz",
                env={"PORT": str(ports[service]), "RABBITMQ_URL": broker["urls"][service]},
                log_path=logs / f"{service}.log",
            )
        )
    started = []
    try:
        for child in children:
            child.start(env, timeout=60)
            started.append(child)
        yield {"ports": ports, "secrets": secrets, "vhost": broker["vhost"], "urls": broker["urls"]}
    except Exception:
        for log in sorted(logs.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text()[-3000:]}")
        raise
    finally:
        for child in reversed(started):
            child.stop()
        mongo.stop()


def auth(secrets) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(secrets['JWT_SECRET'], USER)}"}


async def test_the_whole_conversation_works_with_one_least_privilege_user_per_service(system):
    ports, secrets = system["ports"], system["secrets"]
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['gateway']}", timeout=30) as gateway,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['waha-emulator']}", timeout=30) as waha,
    ):
        # gateway -> commands -> orchestrator -> WAHA, answered through direct reply-to
        r = await gateway.get("/api/v1/waha/qr", headers=auth(secrets))
        assert r.status_code == 200 and r.json()["status"] == "SCAN_QR_CODE", r.text
        # WAHA -> ingest -> events -> orchestrator (status) ; gateway -> queries -> orchestrator
        r = await waha.post(f"/_emulator/sessions/{SESSION}/scan", json={"phone": PHONE})
        assert r.status_code in (200, 201), r.text

        async def working():
            r = await gateway.get("/api/v1/waha/status", headers=auth(secrets))
            return r.status_code == 200 and r.json()["status"] == "WORKING"

        await wait_until(working, timeout=20, what="WORKING")
        # WAHA -> ingest -> events -> persister -> MongoDB ; gateway -> queries -> persister
        sender = "4915112345678"
        r = await waha.post(f"/_emulator/sessions/{SESSION}/inbound", json={"from": sender, "body": "hello"})
        wa_id = r.json()["id"]

        async def stored():
            r = await gateway.get("/api/v1/waha/messages", params={"chatId": f"{sender}@c.us"}, headers=auth(secrets))
            return r.status_code == 200 and any(m["id"] == wa_id for m in r.json()["items"])

        await wait_until(stored, timeout=20, what="the message in the history")
        # gateway: a live WebSocket = a server-named queue of its own, bound to the user's events
        url = f"ws://127.0.0.1:{ports['gateway']}/api/v1/events"
        async with ws_connect(url, additional_headers=auth(secrets)) as ws:
            frames: list[dict] = []

            async def live_message() -> bool:
                # Until the socket's queue is bound an event may pass it by: send another.
                r = await waha.post(f"/_emulator/sessions/{SESSION}/inbound", json={"from": sender, "body": "live"})
                live_id = r.json()["id"]
                try:
                    async with asyncio.timeout(2):
                        while True:
                            frames.append(json.loads(await ws.recv()))
                            if any(f["type"] == "message.received" and f["data"]["id"] == live_id for f in frames):
                                return True
                except TimeoutError:
                    return False

            await wait_until(live_message, timeout=30, what="a live event on the WebSocket")
            assert all(f["userId"] == USER for f in frames)
        # gateway -> orchestrator -> WAHA sendText, orchestrator -> events (message.sent)
        r = await gateway.post(
            "/api/v1/waha/messages", headers=auth(secrets), json={"chatId": f"{sender}@c.us", "text": "hi back"}
        )
        assert r.status_code == 201, r.text

    # ingest -> parked: a signed webhook of a session nobody owns
    envelope = {
        "id": "evt_01" + uuid.uuid4().hex[:24],
        "timestamp": int(time.time() * 1000),
        "event": "message",
        "session": "default",
        "metadata": None,
        "me": None,
        "payload": {},
        "engine": "NOWEB",
    }
    body = json.dumps(envelope).encode()
    path, headers = session_webhook(secrets["WEBHOOK_HMAC_KEY"], "default", body)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['webhook-ingest']}") as ingest:
        r = await ingest.post(path, content=body, headers=headers)
        assert r.status_code < 300, r.text

    async def parked():
        listed = rabbitmqctl("-q", "list_queues", "-p", system["vhost"], "name", "messages")
        return f"{PREFIX}.ingest.parked\t1" in listed.splitlines()

    await wait_until(parked, timeout=15, what="the webhook parked")


async def refused(url: str, action) -> bool:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await action(channel)
        return False
    except ChannelAccessRefused:
        return True
    finally:
        await connection.close()


def publish_to(exchange: str):
    async def action(channel):
        ex = await channel.get_exchange(exchange, ensure=False)
        # The channel has publisher confirms: the publish waits for the broker's answer, which is the refusal.
        await ex.publish(aio_pika.Message(b"{}"), routing_key=f"user.{USER}.session.start")

    return action


def declare_queue(name: str):
    async def action(channel):
        await channel.declare_queue(name, durable=True)

    return action


async def test_a_user_stepping_outside_its_service_is_refused(system):
    urls = system["urls"]
    t = Topology(PREFIX, PARTITIONS)
    assert await refused(urls["gateway"], publish_to(t.events)), "the gateway published an event"
    assert await refused(urls["webhook-ingest"], publish_to(t.commands)), "ingest sent a command"
    assert await refused(urls["persister"], publish_to(t.events)), "the persister published an event"
    assert await refused(urls["session-orchestrator"], publish_to(t.parked)), "the orchestrator parked a webhook"
    for service in SERVICES:
        assert await refused(urls[service], declare_queue(f"{PREFIX}.spy")), f"{service} created a queue of its own"

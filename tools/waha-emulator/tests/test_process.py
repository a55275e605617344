import asyncio
import os
import signal
import subprocess
import sys

import httpx

from waha_emulator.testing import WebhookReceiver, free_port, wait_until


async def test_runs_as_a_real_process(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "WAHA_API_KEY": "proc-key", "WAHA_EMULATOR_STATE_FILE": str(tmp_path / "s.json")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_emulator", "--host", "127.0.0.1", "--port", str(port),
         "--starting-delay", "0.05", "--wait-timeout", "2", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers={"X-Api-Key": "proc-key"}, trust_env=False) as c, \
                WebhookReceiver() as rcv:
            async def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode())
                try:
                    return (await c.get("/ping")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, 15, interval=0.1, message="emulator process up")
            assert (await c.get("/api/sessions", headers={"X-Api-Key": "bad"})).status_code == 401
            r = await c.post("/api/sessions", json={"name": "p1", "start": True, "config": {
                "webhooks": [{"url": rcv.url, "events": ["session.status", "message"], "hmac": {"key": "h"}}]}})
            assert r.status_code == 201
            qr = await c.get("/api/p1/auth/qr")
            assert qr.status_code == 200 and qr.content[:4] == b"\x89PNG"
            assert (await c.post("/_emulator/sessions/p1/scan", json={"phone": "4930123"})).status_code == 201
            assert (await c.post("/_emulator/sessions/p1/inbound", json={"from": "49", "body": "x"})).status_code == 201
            await rcv.wait_for_event("message")
            await wait_until(lambda: "WORKING" in rcv.statuses(), message="WORKING over the socket")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stdout.read().decode()

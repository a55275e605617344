"""What the load generators send: WAHA webhooks as WAHA signs them, and the fleet events they become."""

import json
import time
import uuid

from fleet_shared.contracts import Envelope, deterministic_id, envelope
from fleet_shared.contracts.events import MessageReceived
from fleet_shared.ids import session_name_for
from fleet_shared.waha import session_webhook

from .http1 import build_request

ME = "15550000000@c.us"
BODY = "Hello from the benchmark: a message of ordinary length, about as long as a chat line tends to be."


def users(tag: str, count: int) -> list[str]:
    return [f"{tag}{i:05d}" for i in range(count)]


def sender_of(i: int) -> str:
    return f"49151{i % 1000:07d}"


def wa_message(raw_id: str, sender: str, body: str, timestamp: int) -> dict:
    chat = f"{sender}@c.us"
    return {"id": f"false_{chat}_{raw_id}", "timestamp": timestamp, "from": chat, "to": ME, "fromMe": False,
            "body": body, "hasMedia": False, "ack": 1}


def message_webhook(user: str, raw_id: str, sender: str, body: str = BODY, timestamp: int | None = None) -> dict:
    """WAHA's `message` webhook for an incoming message to `user`'s session."""
    ts = timestamp or int(time.time())
    return {
        "id": f"evt_{uuid.uuid4().hex[:26]}",
        "timestamp": ts * 1000,
        "event": "message",
        "session": session_name_for(user),
        "metadata": {"fleet.userId": user},
        "me": {"id": ME, "pushName": user},
        "payload": wa_message(raw_id, sender, body, ts),
        "engine": "NOWEB",
    }


def signed_post(port: int, hmac_key: str, hook: dict) -> bytes:
    """The raw HTTP request of `hook` as WAHA posts it: to its session's path, signed with its key."""
    body = json.dumps(hook).encode()
    path, headers = session_webhook(hmac_key, hook["session"], body)
    return build_request("POST", path, port, headers, body)


def received_event(user: str, raw_id: str, sender: str, body: str = BODY, timestamp: int | None = None) -> Envelope:
    """The `message.received` event webhook-ingest publishes for `message_webhook(...)` (same id)."""
    ts = timestamp or int(time.time())
    chat = f"{sender}@c.us"
    wa_id = f"false_{chat}_{raw_id}"
    data = MessageReceived(id=wa_id, chat_id=chat, from_me=False, from_=chat, to=ME, body=body, type="chat",
                           has_media=False, timestamp=ts, ack=1)
    return envelope(data, user, id=deterministic_id(user, "message", wa_id), session=session_name_for(user))
